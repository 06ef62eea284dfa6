//! `POST /v1/customers/{id}/rewards` and `GET /v1/customers/{id}/rewards/{grant_id}`: a
//! reward (or a promotion code) for the customer's live subscription
//! ([`crate::ops::rewards`]); the POST answers 202 with the id to poll while it is pending.

use serde::Deserialize;
use utoipa::ToSchema;

use super::respond::{ok, requested};
use crate::domain::{self, CustomerId, IdempotencyKey, PlanId, RewardId};
use crate::ops::{self, API_ACTOR, Ctx};
use crate::web::{ApiError, HttpResponse};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct GiveReward {
    reward: Option<RewardId>,
    promotion_code: Option<String>,
    /// The plan whose subscription gets it, when the customer has several.
    plan_id: Option<PlanId>,
    idempotency_key: Option<IdempotencyKey>,
}

#[utoipa::path(post, path = "/v1/customers/{id}/rewards", operation_id = "giveReward", tag = "requests",
    params(("id" = String, Path, description = "The customer's id")),
    request_body = GiveReward,
    responses(
        (status = 201, description = "Applied", body = crate::views::GrantView),
        (status = 202, description = "Still pending: poll its GET", body = crate::views::GrantView),
        (status = 200, description = "The grant an earlier request with this key made", body = crate::views::GrantView),
        (status = 400, description = "invalid_request", body = crate::web::error::ErrorBody),
        (status = 404, description = "not found", body = crate::web::error::ErrorBody),
        (status = 409, description = "conflict", body = crate::web::error::ErrorBody),
        (status = 503, description = "Stripe not configured, or the database unavailable", body = crate::web::error::ErrorBody),
    ))]
pub(super) async fn create(
    ctx: &Ctx,
    customer_id: &str,
    body: GiveReward,
) -> Result<HttpResponse, ApiError> {
    let customer_id: CustomerId = domain::parse("id", customer_id)?;
    let give = ops::rewards::GiveReward {
        reward: body.reward,
        promotion_code: body.promotion_code,
        plan_id: body.plan_id,
        idempotency_key: body.idempotency_key,
    };
    Ok(requested(
        &ops::rewards::give(ctx, &customer_id, &give, API_ACTOR).await?,
    ))
}

/// `GET /v1/customers/{id}/rewards/{grant_id}`.
#[utoipa::path(get, path = "/v1/customers/{id}/rewards/{grant_id}", operation_id = "getRewardGrant", tag = "requests",
    params(("id" = String, Path, description = "The customer's id"), ("grant_id" = String, Path, description = "The grant's id")),
    responses(
        (status = 200, description = "The grant", body = crate::views::GrantView),
        (status = 400, description = "invalid_request", body = crate::web::error::ErrorBody),
        (status = 404, description = "not found", body = crate::web::error::ErrorBody),
    ))]
pub(super) async fn get(
    ctx: &Ctx,
    customer_id: &str,
    grant_id: &str,
) -> Result<HttpResponse, ApiError> {
    let customer_id: CustomerId = domain::parse("id", customer_id)?;
    domain::check_id("grant_id", grant_id)?;
    Ok(ok(&ops::rewards::get(ctx, &customer_id, grant_id).await?))
}
