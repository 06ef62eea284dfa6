//! `POST /v1/attach` (`GET /v1/attach/{id}` is routed to [`crate::ops::attach::get`]
//! directly): the body into an [`ops::attach::NewAttach`], the answer's status from its
//! outcome.

use serde::Deserialize;
use utoipa::ToSchema;

use super::respond::{ok, requested};
use crate::domain::{CustomerId, EntityId, PlanId, Quantity};
use crate::ops::{self, Ctx};
use crate::web::{ApiError, HttpResponse};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateAttach {
    customer_id: CustomerId,
    plan_id: PlanId,
    success_url: String,
    cancel_url: String,
    /// Units of the plan (seats), 1 by default.
    #[serde(default = "one")]
    quantity: Quantity,
    /// Whether an upgrade prorates (Stripe's default) or is billed from the next period.
    #[serde(default = "yes")]
    prorate: bool,
    #[serde(default)]
    reward: Option<String>,
    #[serde(default)]
    promotion_code: Option<String>,
    #[serde(default)]
    allow_promotion_codes: bool,
    #[serde(default)]
    entity_id: Option<EntityId>,
}

fn one() -> Quantity {
    Quantity::ONE
}

fn yes() -> bool {
    true
}

#[utoipa::path(post, path = "/v1/attach", operation_id = "attach", tag = "requests",
    request_body = CreateAttach,
    responses(
        (status = 201, description = "Attached (or its first outcome)", body = crate::views::AttachAnswer),
        (status = 202, description = "Still pending: poll GET /v1/attach/{id}", body = crate::views::AttachAnswer),
        (status = 200, description = "An attach in flight, or the plan held", body = crate::views::AttachAnswer),
        (status = 400, description = "invalid_request", body = crate::web::error::ErrorBody),
        (status = 404, description = "not found", body = crate::web::error::ErrorBody),
        (status = 409, description = "conflict", body = crate::web::error::ErrorBody),
        (status = 503, description = "Stripe not configured, or the database unavailable", body = crate::web::error::ErrorBody),
    ))]
pub(super) async fn create(ctx: &Ctx, body: CreateAttach) -> Result<HttpResponse, ApiError> {
    let new = ops::attach::NewAttach {
        customer_id: body.customer_id,
        plan_id: body.plan_id,
        success_url: body.success_url,
        cancel_url: body.cancel_url,
        quantity: body.quantity,
        prorate: body.prorate,
        reward: body.reward,
        promotion_code: body.promotion_code,
        allow_promotion_codes: body.allow_promotion_codes,
        entity_id: body.entity_id,
    };
    Ok(requested(&ops::attach::start(ctx, &new).await?))
}

/// `GET /v1/attach/{id}`.
#[utoipa::path(get, path = "/v1/attach/{id}", operation_id = "getAttach", tag = "requests",
    params(("id" = String, Path, description = "The attach's id")),
    responses(
        (status = 200, description = "The attach", body = crate::views::AttachView),
        (status = 400, description = "invalid_request", body = crate::web::error::ErrorBody),
        (status = 404, description = "not found", body = crate::web::error::ErrorBody),
    ))]
pub(super) async fn get(ctx: &Ctx, id: &str) -> Result<HttpResponse, ApiError> {
    Ok(ok(&ops::attach::get(ctx, id).await?))
}
