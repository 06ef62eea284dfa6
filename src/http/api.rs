//! The `/v1` API: a bearer token, then routes to the handlers beside this file, which
//! translate between HTTP and [`crate::ops`].

use hyper::body::Incoming;
use hyper::{Method, Request, header};
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use super::respond::ok;
use super::{AppState, attach, balances, customers, entities, input, plan_changes, rewards};
use crate::ops;
use crate::web::{self, ApiError, HttpResponse};

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
        crate::domain::check_id("id", id)?;
    }
    if let Some(id) = path.get(3) {
        crate::domain::check_id("id", id)?;
    }
    let ctx = &state.ops;
    let query = req.uri().query().map(str::to_owned);
    let query = query.as_deref();
    match (req.method().clone(), path) {
        (Method::GET, ["events", id]) => Ok(ok(&ops::events::get(ctx, id).await?)),
        (Method::POST, ["customers"]) => customers::create(ctx, body(state, req).await?).await,
        (Method::GET, ["customers"]) => customers::list(ctx, query).await,
        (Method::GET, ["customers", id]) => customers::get(ctx, id).await,
        (Method::GET, ["customers", id, "usage"]) => {
            let csv = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("text/csv"));
            balances::usage(ctx, id, query, csv).await
        }
        (Method::GET, ["customers", id, "invoices", invoice]) => {
            customers::invoice(ctx, id, invoice).await
        }
        (Method::GET, ["customers", id, "timeline"]) => customers::timeline(ctx, id, query).await,
        (Method::POST, ["customers", id, "rewards"]) => {
            rewards::create(ctx, id, body(state, req).await?).await
        }
        (Method::GET, ["customers", id, "rewards", grant]) => rewards::get(ctx, id, grant).await,
        (Method::PATCH, ["customers", id]) => {
            customers::update(ctx, id, body(state, req).await?).await
        }
        (Method::DELETE, ["customers", id]) => customers::delete(ctx, id).await,
        (Method::POST, ["customers", id, "entities"]) => {
            entities::create(ctx, id, body(state, req).await?).await
        }
        (Method::GET, ["customers", id, "entities"]) => entities::list(ctx, id).await,
        (Method::GET, ["customers", id, "entities", entity]) => {
            entities::get(ctx, id, entity).await
        }
        (Method::DELETE, ["customers", id, "entities", entity]) => {
            entities::delete(ctx, id, entity).await
        }
        (Method::POST, ["check"]) => balances::check(ctx, body(state, req).await?).await,
        (Method::POST, ["track"]) => balances::track(ctx, body(state, req).await?).await,
        (Method::POST, ["balances"]) => balances::edit(ctx, body(state, req).await?).await,
        (Method::POST, ["attach"]) => attach::create(ctx, body(state, req).await?).await,
        (Method::GET, ["attach", id]) => Ok(ok(&ops::attach::get(ctx, id).await?)),
        (Method::POST, ["cancel"]) => plan_changes::cancel(ctx, body(state, req).await?).await,
        (Method::POST, ["uncancel"]) => plan_changes::uncancel(ctx, body(state, req).await?).await,
        (Method::POST, ["quantity"]) => plan_changes::quantity(ctx, body(state, req).await?).await,
        (Method::GET, ["plan_changes", id]) => Ok(ok(&ops::plan_changes::get(ctx, id).await?)),
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
    let bytes = web::read_body(state.body_limits, req).await?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    input::storable(&value)?;
    serde_json::from_value(value).map_err(|e| ApiError::InvalidJson(e.to_string()))
}
