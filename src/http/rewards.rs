//! `POST /v1/customers/{id}/rewards` and `GET /v1/customers/{id}/rewards/{grant_id}`: a
//! reward (or a promotion code) for the customer's live subscription, recorded as a grant
//! ([`crate::rewards`]) and carried out by the outbox; the POST waits up to
//! `stripe.attach_wait_ms` for the outcome, like attach, else answers 202 with the id to poll.

use hyper::StatusCode;
use serde::Deserialize;

use super::AppState;
use super::customers::{API_ACTOR, find};
use super::error::{ApiError, HttpResponse, json};
use super::input;
use crate::pending;
use crate::rewards::{self, Asked, GrantRequest};
use crate::store::reward_grants::{self, Grant};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GiveReward {
    reward: Option<String>,
    promotion_code: Option<String>,
    /// The plan whose subscription gets it, when the customer has several.
    plan_id: Option<String>,
    idempotency_key: Option<String>,
}

pub(super) async fn create(
    state: &AppState,
    customer_id: &str,
    body: GiveReward,
) -> Result<HttpResponse, ApiError> {
    input::id("id", customer_id)?;
    for (field, value) in [
        ("reward", &body.reward),
        ("plan_id", &body.plan_id),
        ("idempotency_key", &body.idempotency_key),
    ] {
        if let Some(value) = value {
            input::id(field, value)?;
        }
    }
    let asked = Asked::from_fields(body.reward.as_deref(), body.promotion_code.as_deref())?
        .ok_or_else(|| ApiError::invalid("reward", "is required (or `promotion_code`)"))?;
    if !state.stripe_enabled {
        return Err(ApiError::StripeNotConfigured);
    }
    let request = GrantRequest {
        customer_id,
        plan_id: body.plan_id.as_deref(),
        asked,
        actor: API_ACTOR,
        idempotency_key: body.idempotency_key.as_deref(),
    };
    let api = state.stripe_api.as_ref();
    let (grant, duplicate) = rewards::grant(&state.pool, &state.catalog, api, &request).await?;
    let grant = pending::wait(&state.pool, grant, state.attach_wait).await?;
    let status = match (grant.state.as_str(), duplicate) {
        ("pending", _) => StatusCode::ACCEPTED,
        (_, true) => StatusCode::OK,
        (_, false) => StatusCode::CREATED,
    };
    let mut answer = view(&grant, customer_id);
    answer["duplicate"] = duplicate.into();
    Ok(json(status, &answer))
}

/// `GET /v1/customers/{id}/rewards/{grant_id}`.
pub(super) async fn get(
    state: &AppState,
    customer_id: &str,
    grant_id: &str,
) -> Result<HttpResponse, ApiError> {
    input::id("id", customer_id)?;
    input::id("grant_id", grant_id)?;
    let mut conn = state.pool.acquire().await?;
    let customer = find(&mut conn, customer_id).await?;
    let grant = reward_grants::get(&mut conn, grant_id)
        .await?
        .filter(|g| g.customer_pk == customer.pk)
        .ok_or_else(|| ApiError::NotFound {
            code: "reward_grant_not_found",
            what: format!("reward grant {grant_id} of customer {customer_id}"),
        })?;
    Ok(json(StatusCode::OK, &view(&grant, customer_id)))
}

fn view(grant: &Grant, customer_id: &str) -> serde_json::Value {
    let mut v = serde_json::to_value(grant).expect("grants serialize");
    v["customer_id"] = customer_id.into();
    v
}
