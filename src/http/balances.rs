//! `/v1/check`, `/v1/track`, `/v1/balances` and `/v1/customers/{id}/usage`: bodies and
//! query strings into [`crate::ops`] calls, their views into JSON (or CSV).

use chrono::{DateTime, Utc};
use hyper::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::respond::ok;
use crate::domain::{self, Amount, BalanceOp, CustomerId, EntityId, FeatureId, IdempotencyKey};
use crate::ops::{self, API_ACTOR, Ctx};
use crate::store::balances::{Bucket, UsageRecord};
use crate::views::Time;
use crate::web::{ApiError, HttpResponse};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Check {
    customer_id: CustomerId,
    feature_id: FeatureId,
    #[serde(default = "one")]
    required: Amount,
    /// The entity's balance, else (without a grant of its own) the customer's.
    entity_id: Option<EntityId>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Track {
    customer_id: CustomerId,
    feature_id: FeatureId,
    #[serde(default = "one")]
    value: Amount,
    idempotency_key: Option<IdempotencyKey>,
    /// The entity's balance, else (without a grant of its own) the customer's.
    entity_id: Option<EntityId>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct EditBalance {
    customer_id: CustomerId,
    feature_id: FeatureId,
    op: BalanceOp,
    amount: Amount,
    reason: Option<String>,
    idempotency_key: Option<IdempotencyKey>,
}

fn one() -> Amount {
    Amount::ONE
}

/// `POST /v1/check`: `{allowed, balance}`.
#[utoipa::path(post, path = "/v1/check", operation_id = "check", tag = "balances",
    request_body = Check,
    responses(
        (status = 200, description = "Whether the units are there", body = crate::views::Checked),
        (status = 400, description = "invalid_request", body = crate::web::error::ErrorBody),
        (status = 404, description = "not found", body = crate::web::error::ErrorBody),
    ))]
pub(super) async fn check(ctx: &Ctx, body: Check) -> Result<HttpResponse, ApiError> {
    let check = ops::balances::Check {
        customer_id: body.customer_id,
        feature_id: body.feature_id,
        required: body.required,
        entity_id: body.entity_id,
    };
    Ok(ok(&ops::balances::check(ctx, &check).await?))
}

/// `POST /v1/track`: records usage once per `idempotency_key`.
#[utoipa::path(post, path = "/v1/track", operation_id = "track", tag = "balances",
    request_body = Track,
    responses(
        (status = 200, description = "Recorded (once per idempotency_key)", body = crate::views::Tracked),
        (status = 400, description = "invalid_request", body = crate::web::error::ErrorBody),
        (status = 404, description = "not found", body = crate::web::error::ErrorBody),
    ))]
pub(super) async fn track(ctx: &Ctx, body: Track) -> Result<HttpResponse, ApiError> {
    let track = ops::balances::Track {
        customer_id: body.customer_id,
        feature_id: body.feature_id,
        value: body.value,
        idempotency_key: body.idempotency_key,
        entity_id: body.entity_id,
    };
    Ok(ok(&ops::balances::track(ctx, &track).await?))
}

/// `POST /v1/balances`: grant, set or deduct a balance until the feature's next reset, once
/// per `idempotency_key`.
#[utoipa::path(post, path = "/v1/balances", operation_id = "editBalance", tag = "balances",
    request_body = EditBalance,
    responses(
        (status = 200, description = "The balance after the edit", body = crate::views::BalanceEdited),
        (status = 400, description = "invalid_request", body = crate::web::error::ErrorBody),
        (status = 404, description = "not found", body = crate::web::error::ErrorBody),
    ))]
pub(super) async fn edit(ctx: &Ctx, body: EditBalance) -> Result<HttpResponse, ApiError> {
    let edit = ops::balances::Edit {
        customer_id: body.customer_id,
        feature_id: body.feature_id,
        op: body.op,
        amount: body.amount,
        reason: body.reason,
        idempotency_key: body.idempotency_key,
    };
    Ok(ok(&ops::balances::edit(ctx, &edit, API_ACTOR).await?))
}

/// `GET /v1/customers/{id}/usage?feature_id=&from=&to=&group_by=day|hour`: usage totals per
/// bucket; with `Accept: text/csv`, the raw records (the seeds' "export raw event data").
#[utoipa::path(get, path = "/v1/customers/{id}/usage", operation_id = "getUsage", tag = "balances",
    params(("id" = String, Path, description = "The customer's id"),
        ("feature_id" = String, Query, description = "The feature"),
        ("from" = Option<String>, Query, description = "RFC 3339 (30 days before `to`)"),
        ("to" = Option<String>, Query, description = "RFC 3339 (now)"),
        ("group_by" = Option<String>, Query, description = "day or hour"),
    ),
    responses(
        (status = 200, description = "Totals per bucket (with `Accept: text/csv`, the raw records as CSV)", body = crate::views::UsageView),
        (status = 400, description = "invalid_request", body = crate::web::error::ErrorBody),
        (status = 404, description = "not found", body = crate::web::error::ErrorBody),
    ))]
pub(super) async fn usage(
    ctx: &Ctx,
    id: &str,
    query: Option<&str>,
    csv: bool,
) -> Result<HttpResponse, ApiError> {
    let id: CustomerId = domain::parse("id", id)?;
    let (mut feature, mut from, mut to, mut bucket) = (None, None, None, Bucket::Day);
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let at = |field: &str| {
            DateTime::parse_from_rfc3339(&value)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| ApiError::invalid(field, "must be an RFC 3339 time"))
        };
        match key.as_ref() {
            "feature_id" => feature = Some(value.to_string()),
            "from" => from = Some(at("from")?),
            "to" => to = Some(at("to")?),
            "group_by" => {
                bucket = match value.as_ref() {
                    "day" => Bucket::Day,
                    "hour" => Bucket::Hour,
                    _ => return Err(ApiError::invalid("group_by", "must be day or hour")),
                }
            }
            _ => {
                return Err(ApiError::invalid(
                    "query",
                    "takes only feature_id, from, to and group_by",
                ));
            }
        }
    }
    let feature = feature.ok_or_else(|| ApiError::invalid("feature_id", "is required"))?;
    let query = ops::usage::UsageQuery {
        feature_id: domain::parse("feature_id", &feature)?,
        from,
        to,
        bucket,
    };
    if csv {
        return Ok(usage_csv(&ops::usage::records(ctx, &id, &query).await?));
    }
    Ok(ok(&ops::usage::totals(ctx, &id, &query).await?))
}

/// Usage records as CSV: a header row, then one row per record, every field quoted.
fn usage_csv(records: &[UsageRecord]) -> HttpResponse {
    fn field(text: &str) -> String {
        format!("\"{}\"", text.replace('"', "\"\""))
    }
    let mut body = String::from("id,feature_id,value,idempotency_key,recorded_at\n");
    for r in records {
        let row = [
            r.id.to_string(),
            field(&r.feature_id),
            r.value.to_string(),
            field(r.idempotency_key.as_deref().unwrap_or_default()),
            field(&Time(r.recorded_at).to_string()),
        ];
        body.push_str(&row.join(","));
        body.push('\n');
    }
    hyper::Response::builder()
        .status(StatusCode::OK)
        .header(hyper::header::CONTENT_TYPE, "text/csv; charset=utf-8")
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .expect("static response parts are valid")
}
