//! `POST /v1/cancel`, `/v1/uncancel`, `/v1/quantity` (`GET /v1/plan_changes/{id}` is routed
//! to [`crate::ops::plan_changes::get`] directly): bodies into a plan change request; the
//! POST answers 202 with the id to poll while the change is pending.

use serde::Deserialize;
use utoipa::ToSchema;

use super::respond::{ok, requested};
use crate::changes::{CancelAt, Change};
use crate::domain::{CustomerId, IdempotencyKey, PlanId, Quantity};
use crate::ops::plan_changes::ChangeRequest;
use crate::ops::{self, API_ACTOR, Ctx};
use crate::web::{ApiError, HttpResponse};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Cancel {
    customer_id: CustomerId,
    plan_id: PlanId,
    /// `period_end` (the default: the customer keeps what they paid for) or `now`.
    at: Option<String>,
    idempotency_key: Option<IdempotencyKey>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Uncancel {
    customer_id: CustomerId,
    plan_id: PlanId,
    idempotency_key: Option<IdempotencyKey>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct QuantityBody {
    customer_id: CustomerId,
    plan_id: PlanId,
    quantity: Quantity,
    /// Whether Stripe prorates the change (the default) or bills it from the next period.
    prorate: Option<bool>,
    idempotency_key: Option<IdempotencyKey>,
}

#[utoipa::path(post, path = "/v1/cancel", operation_id = "cancel", tag = "requests",
    request_body = Cancel,
    responses(
        (status = 201, description = "Done", body = crate::views::PlanChangeView),
        (status = 202, description = "Still pending: poll GET /v1/plan_changes/{id}", body = crate::views::PlanChangeView),
        (status = 200, description = "The change an earlier request with this key made", body = crate::views::PlanChangeView),
        (status = 400, description = "invalid_request", body = crate::web::error::ErrorBody),
        (status = 404, description = "not found", body = crate::web::error::ErrorBody),
        (status = 409, description = "conflict", body = crate::web::error::ErrorBody),
        (status = 503, description = "Stripe not configured, or the database unavailable", body = crate::web::error::ErrorBody),
    ))]
pub(super) async fn cancel(ctx: &Ctx, body: Cancel) -> Result<HttpResponse, ApiError> {
    let at = match body.at.as_deref() {
        None => CancelAt::PeriodEnd,
        Some(at) => CancelAt::parse(at)
            .ok_or_else(|| ApiError::invalid("at", "must be period_end or now"))?,
    };
    let change = Change::Cancel { at };
    submit(
        ctx,
        body.customer_id,
        body.plan_id,
        body.idempotency_key,
        change,
    )
    .await
}

#[utoipa::path(post, path = "/v1/uncancel", operation_id = "uncancel", tag = "requests",
    request_body = Uncancel,
    responses(
        (status = 201, description = "Done", body = crate::views::PlanChangeView),
        (status = 202, description = "Still pending", body = crate::views::PlanChangeView),
        (status = 200, description = "The change an earlier request with this key made", body = crate::views::PlanChangeView),
        (status = 400, description = "invalid_request", body = crate::web::error::ErrorBody),
        (status = 404, description = "not found", body = crate::web::error::ErrorBody),
        (status = 409, description = "conflict", body = crate::web::error::ErrorBody),
        (status = 503, description = "Stripe not configured, or the database unavailable", body = crate::web::error::ErrorBody),
    ))]
pub(super) async fn uncancel(ctx: &Ctx, body: Uncancel) -> Result<HttpResponse, ApiError> {
    let change = Change::Uncancel;
    submit(
        ctx,
        body.customer_id,
        body.plan_id,
        body.idempotency_key,
        change,
    )
    .await
}

#[utoipa::path(post, path = "/v1/quantity", operation_id = "setQuantity", tag = "requests",
    request_body = QuantityBody,
    responses(
        (status = 201, description = "Done", body = crate::views::PlanChangeView),
        (status = 202, description = "Still pending", body = crate::views::PlanChangeView),
        (status = 200, description = "The change an earlier request with this key made", body = crate::views::PlanChangeView),
        (status = 400, description = "invalid_request", body = crate::web::error::ErrorBody),
        (status = 404, description = "not found", body = crate::web::error::ErrorBody),
        (status = 409, description = "conflict", body = crate::web::error::ErrorBody),
        (status = 503, description = "Stripe not configured, or the database unavailable", body = crate::web::error::ErrorBody),
    ))]
pub(super) async fn quantity(ctx: &Ctx, body: QuantityBody) -> Result<HttpResponse, ApiError> {
    let change = Change::Quantity {
        quantity: body.quantity.get(),
        prorate: body.prorate.unwrap_or(true),
    };
    submit(
        ctx,
        body.customer_id,
        body.plan_id,
        body.idempotency_key,
        change,
    )
    .await
}

async fn submit(
    ctx: &Ctx,
    customer_id: CustomerId,
    plan_id: PlanId,
    idempotency_key: Option<IdempotencyKey>,
    change: Change,
) -> Result<HttpResponse, ApiError> {
    let request = ChangeRequest {
        customer_id,
        plan_id,
        change,
        idempotency_key,
    };
    Ok(requested(
        &ops::plan_changes::request(ctx, &request, API_ACTOR).await?,
    ))
}

/// `GET /v1/plan_changes/{id}`.
#[utoipa::path(get, path = "/v1/plan_changes/{id}", operation_id = "getPlanChange", tag = "requests",
    params(("id" = String, Path, description = "The plan change's id")),
    responses(
        (status = 200, description = "The plan change", body = crate::views::PlanChangeView),
        (status = 400, description = "invalid_request", body = crate::web::error::ErrorBody),
        (status = 404, description = "not found", body = crate::web::error::ErrorBody),
    ))]
pub(super) async fn get(ctx: &Ctx, id: &str) -> Result<HttpResponse, ApiError> {
    Ok(ok(&ops::plan_changes::get(ctx, id).await?))
}
