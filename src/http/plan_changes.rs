//! `POST /v1/cancel`, `/v1/uncancel`, `/v1/quantity` and `GET /v1/plan_changes/{id}`: a
//! durable plan change ([`crate::changes`]), carried out by the outbox; the POST waits up to
//! `stripe.attach_wait_ms` for the outcome, like attach, else answers 202 with the id to poll.

use hyper::StatusCode;
use serde::Deserialize;

use super::AppState;
use super::customers::API_ACTOR;
use super::error::{ApiError, HttpResponse, json};
use super::input;
use crate::changes::{self, CancelAt, Change};
use crate::pending;
use crate::store::customers;
use crate::store::plan_changes::{self, PlanChange};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Cancel {
    customer_id: String,
    plan_id: String,
    /// `period_end` (the default: the customer keeps what they paid for) or `now`.
    at: Option<String>,
    idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Uncancel {
    customer_id: String,
    plan_id: String,
    idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Quantity {
    customer_id: String,
    plan_id: String,
    quantity: i64,
    /// Whether Stripe prorates the change (the default) or bills it from the next period.
    prorate: Option<bool>,
    idempotency_key: Option<String>,
}

pub(super) async fn cancel(state: &AppState, body: Cancel) -> Result<HttpResponse, ApiError> {
    let at = match body.at.as_deref() {
        None => CancelAt::PeriodEnd,
        Some(at) => CancelAt::parse(at)
            .ok_or_else(|| ApiError::invalid("at", "must be period_end or now"))?,
    };
    let target = Target {
        customer_id: &body.customer_id,
        plan_id: &body.plan_id,
        idempotency_key: body.idempotency_key.as_deref(),
    };
    submit(state, target, Change::Cancel { at }).await
}

pub(super) async fn uncancel(state: &AppState, body: Uncancel) -> Result<HttpResponse, ApiError> {
    let target = Target {
        customer_id: &body.customer_id,
        plan_id: &body.plan_id,
        idempotency_key: body.idempotency_key.as_deref(),
    };
    submit(state, target, Change::Uncancel).await
}

pub(super) async fn quantity(state: &AppState, body: Quantity) -> Result<HttpResponse, ApiError> {
    let quantity = input::quantity("quantity", body.quantity)?;
    let target = Target {
        customer_id: &body.customer_id,
        plan_id: &body.plan_id,
        idempotency_key: body.idempotency_key.as_deref(),
    };
    let prorate = body.prorate.unwrap_or(true);
    submit(state, target, Change::Quantity { quantity, prorate }).await
}

/// Which plan of which customer, and the request's idempotency key.
pub(crate) struct Target<'a> {
    pub(crate) customer_id: &'a str,
    pub(crate) plan_id: &'a str,
    pub(crate) idempotency_key: Option<&'a str>,
}

async fn submit(
    state: &AppState,
    target: Target<'_>,
    change: Change,
) -> Result<HttpResponse, ApiError> {
    let (status, answer) = request(state, target, change, API_ACTOR).await?;
    Ok(json(status, &answer))
}

/// Records a plan change for `actor` and waits for it like the API does: the status and
/// answer of `POST /v1/cancel|uncancel|quantity` (the API's and the console's).
pub(crate) async fn request(
    state: &AppState,
    target: Target<'_>,
    change: Change,
    actor: &str,
) -> Result<(StatusCode, serde_json::Value), ApiError> {
    if let Change::Quantity { quantity, .. } = change {
        input::quantity("quantity", i64::from(quantity))?;
    }
    input::id("customer_id", target.customer_id)?;
    input::id("plan_id", target.plan_id)?;
    if let Some(key) = target.idempotency_key {
        input::id("idempotency_key", key)?;
    }
    if !state.stripe_enabled {
        return Err(ApiError::StripeNotConfigured);
    }
    let request = changes::Request {
        customer_id: target.customer_id,
        plan_id: target.plan_id,
        change,
        actor,
        idempotency_key: target.idempotency_key,
    };
    let (change, duplicate) = changes::request(&state.pool, &state.catalog, &request).await?;
    let change = pending::wait(&state.pool, change, state.attach_wait).await?;
    let status = match (change.state.as_str(), duplicate) {
        ("pending", _) => StatusCode::ACCEPTED,
        (_, true) => StatusCode::OK,
        (_, false) => StatusCode::CREATED,
    };
    let mut answer = view(&change, target.customer_id);
    answer["duplicate"] = duplicate.into();
    Ok((status, answer))
}

/// `GET /v1/plan_changes/{id}`.
pub(super) async fn get(state: &AppState, id: &str) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.acquire().await?;
    let change = plan_changes::get(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            code: "plan_change_not_found",
            what: format!("plan change {id}"),
        })?;
    let customer = customers::by_pk(&mut conn, change.customer_pk).await?;
    let customer_id = customer.and_then(|c| c.id).unwrap_or_default();
    Ok(json(StatusCode::OK, &view(&change, &customer_id)))
}

pub(crate) fn view(change: &PlanChange, customer_id: &str) -> serde_json::Value {
    let mut v = serde_json::to_value(change).expect("plan changes serialize");
    v["customer_id"] = customer_id.into();
    v
}
