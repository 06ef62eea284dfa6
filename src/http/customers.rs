//! `/v1/customers` (one, the list, an invoice, the timeline): bodies and query strings into
//! [`crate::ops`] calls, their views into JSON.

use hyper::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::respond::ok;
use crate::domain::{self, CustomerId, Limit};
use crate::ops::{self, Ctx};
use crate::web::{ApiError, HttpResponse, json};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateCustomer {
    id: Option<String>,
    name: Option<String>,
    email: Option<String>,
    fingerprint: Option<String>,
    metadata: Option<Value>,
    #[serde(default)]
    create_in_stripe: bool,
    stripe_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateCustomer {
    name: Option<String>,
    email: Option<String>,
    metadata: Option<Value>,
    /// Links an existing Stripe customer (an unlinked customer, or to replace a deleted one).
    stripe_id: Option<String>,
}

/// `POST /v1/customers`: get-or-create; 201 when created, 200 when it existed.
pub(super) async fn create(ctx: &Ctx, body: CreateCustomer) -> Result<HttpResponse, ApiError> {
    let new = ops::customers::NewCustomer {
        id: domain::parse_opt("id", body.id.as_deref())?,
        name: body.name,
        email: body.email,
        fingerprint: body.fingerprint,
        metadata: body.metadata,
        create_in_stripe: body.create_in_stripe,
        stripe_id: body.stripe_id,
    };
    let (created, view) = ops::customers::get_or_create(ctx, new).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json(status, &view))
}

pub(super) async fn get(ctx: &Ctx, id: &str) -> Result<HttpResponse, ApiError> {
    let id: CustomerId = domain::parse("id", id)?;
    Ok(ok(&ops::customers::get(ctx, &id).await?))
}

pub(super) async fn update(
    ctx: &Ctx,
    id: &str,
    body: UpdateCustomer,
) -> Result<HttpResponse, ApiError> {
    let id: CustomerId = domain::parse("id", id)?;
    let changes = ops::customers::CustomerChanges {
        name: body.name,
        email: body.email,
        metadata: body.metadata,
        stripe_id: body.stripe_id,
    };
    Ok(ok(&ops::customers::update(ctx, &id, changes).await?))
}

/// `DELETE /v1/customers/{id}`: ours only; the Stripe customer is left alone.
pub(super) async fn delete(ctx: &Ctx, id: &str) -> Result<HttpResponse, ApiError> {
    let id: CustomerId = domain::parse("id", id)?;
    Ok(ok(&ops::customers::delete(ctx, &id).await?))
}

/// `GET /v1/customers?search=&plan_id=&status=&limit=&cursor=`: newest first, a page at a
/// time (`next_cursor` until the last page).
pub(super) async fn list(ctx: &Ctx, query: Option<&str>) -> Result<HttpResponse, ApiError> {
    let mut list = ops::search::ListQuery::default();
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "search" => list.search = Some(value.into_owned()),
            "plan_id" => list.plan_id = Some(domain::parse("plan_id", &value)?),
            "status" => list.status = Some(value.into_owned()),
            "limit" => list.limit = domain::parse("limit", &value)?,
            "cursor" => list.cursor = Some(value.into_owned()),
            _ => {
                return Err(ApiError::invalid(
                    "query",
                    "takes only search, plan_id, status, limit and cursor",
                ));
            }
        }
    }
    Ok(ok(&ops::search::list(ctx, &list).await?))
}

/// `GET /v1/customers/{id}/invoices/{invoice_id}`: one of the customer's invoices, as the
/// view lists it, with its period and lines.
pub(super) async fn invoice(
    ctx: &Ctx,
    id: &str,
    invoice_id: &str,
) -> Result<HttpResponse, ApiError> {
    let id: CustomerId = domain::parse("id", id)?;
    domain::check_id("invoice_id", invoice_id)?;
    Ok(ok(&ops::invoices::get(ctx, &id, invoice_id).await?))
}

/// `GET /v1/customers/{id}/timeline?limit=&cursor=`: what happened to a customer, newest
/// first.
pub(super) async fn timeline(
    ctx: &Ctx,
    id: &str,
    query: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let id: CustomerId = domain::parse("id", id)?;
    let mut limit = Limit::DEFAULT;
    let mut cursor = None;
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "limit" => limit = domain::parse("limit", &value)?,
            "cursor" => cursor = Some(value.into_owned()),
            _ => return Err(ApiError::invalid("query", "takes only limit and cursor")),
        }
    }
    Ok(ok(
        &ops::timeline::page(ctx, &id, limit, cursor.as_deref()).await?
    ))
}
