//! The `/v1` API: a bearer token, then the route ([`super::routes`]) to the handlers beside
//! this file, which translate between HTTP and [`crate::ops`].

use hyper::body::Incoming;
use hyper::{Request, header};
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use super::routes::{self, Route};
use super::{
    AppState, attach, balances, customers, entities, events, input, plan_changes, rewards,
};
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
    let route = routes::resolve(req.method(), path)?;
    let ctx = &state.ops;
    let query = req.uri().query().map(str::to_owned);
    let query = query.as_deref();
    // The ids a route's template names: `{id}` second, the other one fourth.
    let id = path.get(1).copied().unwrap_or_default();
    let other = path.get(3).copied().unwrap_or_default();
    match route {
        Route::OpenApi => Ok(super::openapi::serve()),
        Route::GetEvent => events::get(ctx, id).await,
        Route::CreateCustomer => customers::create(ctx, body(state, req).await?).await,
        Route::ListCustomers => customers::list(ctx, query).await,
        Route::GetCustomer => customers::get(ctx, id).await,
        Route::UpdateCustomer => customers::update(ctx, id, body(state, req).await?).await,
        Route::DeleteCustomer => customers::delete(ctx, id).await,
        Route::Usage => {
            let csv = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("text/csv"));
            balances::usage(ctx, id, query, csv).await
        }
        Route::Invoice => customers::invoice(ctx, id, other).await,
        Route::Timeline => customers::timeline(ctx, id, query).await,
        Route::GiveReward => rewards::create(ctx, id, body(state, req).await?).await,
        Route::GetGrant => rewards::get(ctx, id, other).await,
        Route::CreateEntity => entities::create(ctx, id, body(state, req).await?).await,
        Route::ListEntities => entities::list(ctx, id).await,
        Route::GetEntity => entities::get(ctx, id, other).await,
        Route::DeleteEntity => entities::delete(ctx, id, other).await,
        Route::Check => balances::check(ctx, body(state, req).await?).await,
        Route::Track => balances::track(ctx, body(state, req).await?).await,
        Route::EditBalance => balances::edit(ctx, body(state, req).await?).await,
        Route::Attach => attach::create(ctx, body(state, req).await?).await,
        Route::GetAttach => attach::get(ctx, id).await,
        Route::Cancel => plan_changes::cancel(ctx, body(state, req).await?).await,
        Route::Uncancel => plan_changes::uncancel(ctx, body(state, req).await?).await,
        Route::Quantity => plan_changes::quantity(ctx, body(state, req).await?).await,
        Route::GetPlanChange => plan_changes::get(ctx, id).await,
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
    input::typed(value)
}
