//! The `/v1` API: bearer-token protected reads (and, in later issues, writes).

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode, header};
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::{ApiError, HttpResponse, json};
use crate::store::events;

/// Checks `Authorization: Bearer <token>` in constant time.
pub(super) fn authorize(state: &AppState, req: &Request<Incoming>) -> Result<(), ApiError> {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .ok_or(ApiError::Unauthorized)?;
    let expected = state.api_token.expose().as_bytes();
    if bool::from(presented.ct_eq(expected)) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// Routes below `/v1`; `path` is the segments after `v1`.
pub(super) async fn route(
    state: &AppState,
    req: Request<Incoming>,
    path: &[&str],
) -> Result<HttpResponse, ApiError> {
    match (req.method(), path) {
        (&Method::GET, ["events", id]) => get_event(state, id).await,
        (_, ["events", _]) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NoRoute),
    }
}

async fn get_event(state: &AppState, id: &str) -> Result<HttpResponse, ApiError> {
    let event = events::get(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            code: "event_not_found",
            what: format!("event {id}"),
        })?;
    Ok(json(StatusCode::OK, &event.summary()))
}
