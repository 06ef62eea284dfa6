//! The `/v1` API: bearer-token protected reads (and, in later issues, writes).

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode, header};
use subtle::ConstantTimeEq;

use serde::de::DeserializeOwned;

use super::error::{ApiError, HttpResponse, json};
use super::{
    AppState, attach, customers, entities, input, plan_changes, rewards, timeline, webhook,
};
use outbox::log as events;

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

/// Routes below `/v1`; `path` is the percent-decoded segments after `v1`.
pub(super) async fn route(
    state: &AppState,
    req: Request<Incoming>,
    path: &[&str],
) -> Result<HttpResponse, ApiError> {
    // Every id in the path (`{what}/{id}` and `customers/{id}/{what}/{id}`) is checked
    // before any route reads it.
    if let Some(id) = path.get(1) {
        input::id("id", id)?;
    }
    if let Some(id) = path.get(3) {
        input::id("id", id)?;
    }
    match (req.method().clone(), path) {
        (Method::GET, ["events", id]) => get_event(state, id).await,
        (Method::POST, ["customers"]) => customers::create(state, body(state, req).await?).await,
        (Method::GET, ["customers"]) => customers::list(state, req.uri().query()).await,
        (Method::GET, ["customers", id]) => customers::get(state, id).await,
        (Method::GET, ["customers", id, "usage"]) => {
            let csv = req
                .headers()
                .get(hyper::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("text/csv"));
            customers::usage(state, id, req.uri().query(), csv).await
        }
        (Method::GET, ["customers", id, "invoices", invoice]) => {
            customers::invoice(state, id, invoice).await
        }
        (Method::GET, ["customers", id, "timeline"]) => {
            timeline::get(state, id, req.uri().query()).await
        }
        (Method::POST, ["customers", id, "rewards"]) => {
            rewards::create(state, id, body(state, req).await?).await
        }
        (Method::GET, ["customers", id, "rewards", grant]) => rewards::get(state, id, grant).await,
        (Method::PATCH, ["customers", id]) => {
            customers::update(state, id, body(state, req).await?).await
        }
        (Method::DELETE, ["customers", id]) => customers::delete(state, id).await,
        (Method::POST, ["customers", id, "entities"]) => {
            entities::create(state, id, body(state, req).await?).await
        }
        (Method::GET, ["customers", id, "entities"]) => entities::list(state, id).await,
        (Method::GET, ["customers", id, "entities", entity]) => {
            entities::get(state, id, entity).await
        }
        (Method::DELETE, ["customers", id, "entities", entity]) => {
            entities::delete(state, id, entity).await
        }
        (Method::POST, ["check"]) => customers::check(state, body(state, req).await?).await,
        (Method::POST, ["track"]) => customers::track(state, body(state, req).await?).await,
        (Method::POST, ["balances"]) => {
            customers::edit_balance(state, body(state, req).await?).await
        }
        (Method::POST, ["attach"]) => attach::create(state, body(state, req).await?).await,
        (Method::GET, ["attach", id]) => attach::get(state, id).await,
        (Method::POST, ["cancel"]) => plan_changes::cancel(state, body(state, req).await?).await,
        (Method::POST, ["uncancel"]) => {
            plan_changes::uncancel(state, body(state, req).await?).await
        }
        (Method::POST, ["quantity"]) => {
            plan_changes::quantity(state, body(state, req).await?).await
        }
        (Method::GET, ["plan_changes", id]) => plan_changes::get(state, id).await,
        (
            _,
            ["events", _]
            | ["customers"]
            | ["customers", _]
            | ["customers", _, "usage"]
            | ["customers", _, "invoices", _]
            | ["customers", _, "entities"]
            | ["customers", _, "entities", _]
            | ["check"]
            | ["track"]
            | ["balances"]
            | ["attach"]
            | ["attach", _]
            | ["cancel"]
            | ["uncancel"]
            | ["quantity"]
            | ["plan_changes", _]
            | ["customers", _, "timeline"]
            | ["customers", _, "rewards"]
            | ["customers", _, "rewards", _],
        ) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NoRoute),
    }
}

/// Reads a JSON body (bounded in size and time like webhooks) into `T`; errors name the
/// offending field. Bodies are checked for strings Postgres cannot store before anything
/// else sees them.
async fn body<T: DeserializeOwned>(
    state: &AppState,
    req: Request<Incoming>,
) -> Result<T, ApiError> {
    let bytes = webhook::read_body(state, req).await?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    input::storable(&value)?;
    serde_json::from_value(value).map_err(|e| ApiError::InvalidJson(e.to_string()))
}

async fn get_event(state: &AppState, id: &str) -> Result<HttpResponse, ApiError> {
    let event = events::get(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            code: "event_not_found",
            what: format!("event {id}"),
        })?;
    // The public shape of an event: what happened to it, not where it came from.
    let summary = serde_json::json!({
        "id": event.id,
        "type": event.event_type,
        "created": event.created,
        "received_at": event.received_at,
        "state": event.state,
        "attempts": event.attempts,
        "last_error": event.last_error,
    });
    Ok(json(StatusCode::OK, &summary))
}
