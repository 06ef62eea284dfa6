//! How the `/v1` handlers answer with a view: 200, or a durable request's status.

use hyper::StatusCode;

use crate::ops::Requested;
use crate::web::{HttpResponse, json};

/// A 200 with the view as JSON.
pub(super) fn ok(view: &impl serde::Serialize) -> HttpResponse {
    json(StatusCode::OK, view)
}

/// A durable request's answer: 202 while it is pending, 200 when an earlier request with
/// the same key (or the state it asked for) answered, 201 when it was made now.
pub(super) fn requested<T: serde::Serialize>(requested: &Requested<T>) -> HttpResponse {
    let status = match (requested.pending, requested.duplicate) {
        (true, _) => StatusCode::ACCEPTED,
        (_, true) => StatusCode::OK,
        (_, false) => StatusCode::CREATED,
    };
    json(status, &requested.view)
}
