//! `/v1/customers` (one, the list, an invoice, the timeline): bodies and query strings into
//! [`crate::ops`] calls, their views into JSON.

use hyper::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::respond::ok;
use crate::domain::{self, CustomerId, Limit};
use crate::ops::{self, Ctx};
use crate::web::{ApiError, HttpResponse, json};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateCustomer {
    id: Option<CustomerId>,
    name: Option<String>,
    email: Option<String>,
    fingerprint: Option<String>,
    metadata: Option<Value>,
    #[serde(default)]
    create_in_stripe: bool,
    stripe_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateCustomer {
    name: Option<String>,
    email: Option<String>,
    metadata: Option<Value>,
    /// Links an existing Stripe customer (an unlinked customer, or to replace a deleted one).
    stripe_id: Option<String>,
}

/// `POST /v1/customers`: get-or-create; 201 when created, 200 when it existed.
#[utoipa::path(post, path = "/v1/customers", operation_id = "createCustomer", tag = "customers",
    request_body = CreateCustomer,
    responses(
        (status = 201, description = "Created, with the default plans of every group", body = crate::views::CustomerView),
        (status = 200, description = "It existed: the given fields refreshed", body = crate::views::CustomerView),
        (status = 400, description = "invalid_request", body = crate::web::error::ErrorBody),
        (status = 409, description = "conflict", body = crate::web::error::ErrorBody),
        (status = 503, description = "Stripe not configured, or the database unavailable", body = crate::web::error::ErrorBody),
    ))]
pub(super) async fn create(ctx: &Ctx, body: CreateCustomer) -> Result<HttpResponse, ApiError> {
    let new = ops::customers::NewCustomer {
        id: body.id,
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

#[utoipa::path(get, path = "/v1/customers/{id}", operation_id = "getCustomer", tag = "customers",
    params(("id" = String, Path, description = "The customer's id")),
    responses(
        (status = 200, description = "The customer's view", body = crate::views::CustomerView),
        (status = 400, description = "invalid_request", body = crate::web::error::ErrorBody),
        (status = 404, description = "not found", body = crate::web::error::ErrorBody),
    ))]
pub(super) async fn get(ctx: &Ctx, id: &str) -> Result<HttpResponse, ApiError> {
    let id: CustomerId = domain::parse("id", id)?;
    Ok(ok(&ops::customers::get(ctx, &id).await?))
}

#[utoipa::path(patch, path = "/v1/customers/{id}", operation_id = "updateCustomer", tag = "customers",
    params(("id" = String, Path, description = "The customer's id")),
    request_body = UpdateCustomer,
    responses(
        (status = 200, description = "The customer's view", body = crate::views::CustomerView),
        (status = 400, description = "invalid_request", body = crate::web::error::ErrorBody),
        (status = 404, description = "not found", body = crate::web::error::ErrorBody),
        (status = 409, description = "conflict", body = crate::web::error::ErrorBody),
        (status = 503, description = "Stripe not configured, or the database unavailable", body = crate::web::error::ErrorBody),
    ))]
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
#[utoipa::path(delete, path = "/v1/customers/{id}", operation_id = "deleteCustomer", tag = "customers",
    params(("id" = String, Path, description = "The customer's id")),
    responses(
        (status = 200, description = "Deleted here (nothing in Stripe)", body = crate::views::CustomerDeleted),
        (status = 400, description = "invalid_request", body = crate::web::error::ErrorBody),
        (status = 404, description = "not found", body = crate::web::error::ErrorBody),
    ))]
pub(super) async fn delete(ctx: &Ctx, id: &str) -> Result<HttpResponse, ApiError> {
    let id: CustomerId = domain::parse("id", id)?;
    Ok(ok(&ops::customers::delete(ctx, &id).await?))
}

/// `GET /v1/customers?search=&plan_id=&status=&limit=&cursor=`: newest first, a page at a
/// time (`next_cursor` until the last page).
#[utoipa::path(get, path = "/v1/customers", operation_id = "listCustomers", tag = "customers",
    params(
        ("search" = Option<String>, Query, description = "A substring of the id, name or email"),
        ("plan_id" = Option<String>, Query, description = "Customers holding this plan"),
        ("status" = Option<String>, Query, description = "...in this status"),
        ("limit" = Option<i64>, Query, description = "1 to 100 (20)"),
        ("cursor" = Option<String>, Query, description = "The next_cursor of the page before"),
    ),
    responses(
        (status = 200, description = "A page, newest first", body = crate::views::Page<crate::views::ListedCustomer>),
        (status = 400, description = "invalid_request", body = crate::web::error::ErrorBody),
    ))]
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
#[utoipa::path(get, path = "/v1/customers/{id}/invoices/{invoice_id}", operation_id = "getInvoice", tag = "customers",
    params(("id" = String, Path, description = "The customer's id"), ("invoice_id" = String, Path, description = "The invoice's Stripe id")),
    responses(
        (status = 200, description = "The invoice with its lines and discounts", body = crate::views::InvoiceDetail),
        (status = 400, description = "invalid_request", body = crate::web::error::ErrorBody),
        (status = 404, description = "not found", body = crate::web::error::ErrorBody),
    ))]
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
#[utoipa::path(get, path = "/v1/customers/{id}/timeline", operation_id = "getTimeline", tag = "customers",
    params(("id" = String, Path, description = "The customer's id"),
        ("limit" = Option<i64>, Query, description = "1 to 100 (20)"),
        ("cursor" = Option<String>, Query, description = "The next_cursor of the page before"),
    ),
    responses(
        (status = 200, description = "What happened, newest first", body = crate::views::Page<crate::views::TimelineEntry>),
        (status = 400, description = "invalid_request", body = crate::web::error::ErrorBody),
        (status = 404, description = "not found", body = crate::web::error::ErrorBody),
    ))]
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
