//! `/v1/customers` (with a customer's usage and invoices), `/v1/check`, `/v1/track`,
//! `/v1/balances`.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::error::{ApiError, HttpResponse, json};
use super::{AppState, entities, input};
use crate::catalog::{Catalog, Interval};
use crate::jobs;
use crate::store::customers::{self, Customer, CustomerFields};
use crate::store::{balances, discounts, invoices, plans, trials};
use crate::stripe::ids;
use hyper::StatusCode;
use sqlx::{PgConnection, PgPool};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateCustomer {
    pub(crate) id: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) fingerprint: Option<String>,
    pub(crate) metadata: Option<Value>,
    #[serde(default)]
    pub(crate) create_in_stripe: bool,
    pub(crate) stripe_id: Option<String>,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Check {
    customer_id: String,
    feature_id: String,
    #[serde(default = "one")]
    required: i64,
    /// The entity's balance, else (without a grant of its own) the customer's.
    entity_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Track {
    customer_id: String,
    feature_id: String,
    #[serde(default = "one")]
    value: i64,
    idempotency_key: Option<String>,
    /// The entity's balance, else (without a grant of its own) the customer's.
    entity_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EditBalance {
    pub(crate) customer_id: String,
    pub(crate) feature_id: String,
    pub(crate) op: String,
    pub(crate) amount: i64,
    pub(crate) reason: Option<String>,
    pub(crate) idempotency_key: Option<String>,
}

fn one() -> i64 {
    1
}

/// `POST /v1/customers`: get-or-create; 201 when created, 200 when it existed.
pub(super) async fn create(
    state: &AppState,
    body: CreateCustomer,
) -> Result<HttpResponse, ApiError> {
    let (created, view) = get_or_create(state, body).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json(status, &view))
}

/// Get-or-create (the API's and the console's): whether it was created, and its view.
pub(crate) async fn get_or_create(
    state: &AppState,
    body: CreateCustomer,
) -> Result<(bool, Value), ApiError> {
    if body.id.is_none() && body.email.is_none() {
        return Err(ApiError::invalid(
            "id",
            "`id` is required unless `email` is given",
        ));
    }
    if let Some(id) = &body.id {
        input::id("id", id)?;
    }
    validate_fields(
        body.name.as_deref(),
        body.email.as_deref(),
        body.metadata.as_ref(),
    )?;
    input::text("fingerprint", body.fingerprint.as_deref(), MAX_TEXT_CHARS)?;
    valid_stripe_id(body.stripe_id.as_deref())?;
    if (body.create_in_stripe || body.stripe_id.is_some()) && !state.stripe_enabled {
        return Err(ApiError::StripeNotConfigured);
    }
    let fields = CustomerFields {
        name: body.name,
        email: body.email,
        fingerprint: body
            .fingerprint
            .as_deref()
            .and_then(trials::normalize)
            .map(str::to_owned),
        metadata: body.metadata,
    };
    let mut tx = state.pool.begin().await?;
    let (customer, created) = customers::get_or_create(&mut tx, body.id.as_deref(), &fields)
        .await?
        .ok_or_else(|| ApiError::Conflict {
            code: "concurrent_change",
            message: "the customer was deleted while this request ran; retry".to_owned(),
        })?;
    if created {
        plans::activate_defaults(&mut tx, &state.catalog, customer.pk, customer.created_at).await?;
    }
    if let Some(stripe_id) = body.stripe_id.as_deref() {
        link(&mut tx, customer.pk, stripe_id).await?;
    } else if body.create_in_stripe && customer.stripe_id.is_none() {
        let job = jobs::CreateCustomer {
            customer_pk: customer.pk,
        };
        outbox::enqueue(&mut tx, &job).await?;
    }
    let customer = customers::by_pk(&mut tx, customer.pk)
        .await?
        .unwrap_or(customer);
    let view = view(&mut tx, &state.catalog, &customer).await?;
    tx.commit().await?;
    Ok((created, view))
}

pub(super) async fn get(state: &AppState, id: &str) -> Result<HttpResponse, ApiError> {
    Ok(json(
        StatusCode::OK,
        &view_of(&state.pool, &state.catalog, id).await?,
    ))
}

/// `GET /v1/customers/{id}`'s answer (the API's, the console's and the CLI's).
pub(crate) async fn view_of(pool: &PgPool, catalog: &Catalog, id: &str) -> Result<Value, ApiError> {
    let mut conn = pool.acquire().await?;
    let customer = find(&mut conn, id).await?;
    Ok(view(&mut conn, catalog, &customer).await?)
}

pub(super) async fn update(
    state: &AppState,
    id: &str,
    body: UpdateCustomer,
) -> Result<HttpResponse, ApiError> {
    validate_fields(
        body.name.as_deref(),
        body.email.as_deref(),
        body.metadata.as_ref(),
    )?;
    valid_stripe_id(body.stripe_id.as_deref())?;
    if body.stripe_id.is_some() && !state.stripe_enabled {
        return Err(ApiError::StripeNotConfigured);
    }
    let contact_changed = body.name.is_some() || body.email.is_some();
    let fields = CustomerFields {
        name: body.name,
        email: body.email,
        fingerprint: None,
        metadata: body.metadata,
    };
    let mut tx = state.pool.begin().await?;
    let customer = customers::update(&mut tx, id, &fields)
        .await?
        .ok_or_else(|| customer_not_found(id))?;
    let already = customer.stripe_id.as_deref();
    if let Some(stripe_id) = body.stripe_id.as_deref().filter(|id| Some(*id) != already) {
        link(&mut tx, customer.pk, stripe_id).await?;
    }
    let customer = customers::by_pk(&mut tx, customer.pk)
        .await?
        .ok_or_else(|| customer_not_found(id))?;
    if contact_changed && customer.stripe_id.is_some() {
        customers::mark_contact_local(&mut tx, customer.pk).await?;
        // Invoices carry the Stripe customer's name and email: push ours there.
        let job = jobs::SyncCustomer {
            customer_pk: customer.pk,
            name: fields.name.clone(),
            email: fields.email.clone(),
            change: chrono::Utc::now().timestamp_micros(),
        };
        outbox::enqueue(&mut tx, &job).await?;
    }
    let view = view(&mut tx, &state.catalog, &customer).await?;
    tx.commit().await?;
    Ok(json(StatusCode::OK, &view))
}

/// `DELETE /v1/customers/{id}`: ours only; the Stripe customer is left alone.
pub(super) async fn delete(state: &AppState, id: &str) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.acquire().await?;
    if !customers::delete(&mut conn, id).await? {
        return Err(customer_not_found(id));
    }
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "id": id, "deleted": true }),
    ))
}

/// `POST /v1/check`: `{allowed, balance}`.
pub(super) async fn check(state: &AppState, body: Check) -> Result<HttpResponse, ApiError> {
    input::id("customer_id", &body.customer_id)?;
    input::id("feature_id", &body.feature_id)?;
    input::amount("required", body.required)?;
    if let Some(entity_id) = &body.entity_id {
        let (customer_id, feature_id) = (&body.customer_id, &body.feature_id);
        return entities::check(state, customer_id, entity_id, feature_id, body.required).await;
    }
    let mut tx = state.pool.begin().await?;
    let customer = find(&mut tx, &body.customer_id).await?;
    known_feature(&state.catalog, &body.feature_id)?;
    let balance = balances::current(&mut tx, customer.pk, &body.feature_id).await?;
    tx.commit().await?;
    let (allowed, remaining, unlimited) = match &balance {
        Some(b) => (b.allows(body.required), b.remaining(), b.unlimited),
        None => (false, 0, false),
    };
    let mut answer = serde_json::json!({
        "customer_id": body.customer_id, "feature_id": body.feature_id,
        "allowed": allowed, "balance": remaining, "unlimited": unlimited,
    });
    if balance.as_ref().is_some_and(|b| b.suspended) {
        // Granted only by a paused or unpaid plan: the balance is kept for its return.
        answer["reason"] = "plan_suspended".into();
    }
    Ok(json(StatusCode::OK, &answer))
}

/// `POST /v1/track`: records usage once per `idempotency_key`.
pub(super) async fn track(state: &AppState, body: Track) -> Result<HttpResponse, ApiError> {
    input::id("customer_id", &body.customer_id)?;
    input::id("feature_id", &body.feature_id)?;
    input::amount("value", body.value)?;
    if let Some(key) = &body.idempotency_key {
        input::id("idempotency_key", key)?;
    }
    if let Some(entity_id) = &body.entity_id {
        let usage = entities::Usage {
            feature_id: &body.feature_id,
            value: body.value,
            idempotency_key: body.idempotency_key.as_deref(),
        };
        return entities::track(state, &body.customer_id, entity_id, usage).await;
    }
    let mut tx = state.pool.begin().await?;
    let customer = find(&mut tx, &body.customer_id).await?;
    known_feature(&state.catalog, &body.feature_id)?;
    let (balance, duplicate) = balances::track(
        &mut tx,
        customer.pk,
        &body.feature_id,
        body.value,
        body.idempotency_key.as_deref(),
    )
    .await?;
    tx.commit().await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "customer_id": body.customer_id, "feature_id": body.feature_id,
            "balance": balance.as_ref().map_or(0, balances::Balance::remaining),
            "duplicate": duplicate,
        }),
    ))
}

/// `GET /v1/customers?search=&plan_id=&status=&limit=&cursor=`: newest first, a page at a
/// time (`next_cursor` until the last page).
pub(super) async fn list(state: &AppState, query: Option<&str>) -> Result<HttpResponse, ApiError> {
    Ok(json(StatusCode::OK, &list_page(&state.pool, query).await?))
}

/// `GET /v1/customers`' answer for a query string (the API's, the console's and the CLI's).
pub(crate) async fn list_page(pool: &PgPool, query: Option<&str>) -> Result<Value, ApiError> {
    let mut search = None;
    let mut plan_id = None;
    let mut status = None;
    let mut limit = DEFAULT_PAGE;
    let mut before_pk = None;
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "search" => {
                input::text("search", Some(&value), MAX_TEXT_CHARS)?;
                search = Some(value.into_owned()).filter(|s| !s.is_empty());
            }
            "plan_id" => {
                input::id("plan_id", &value)?;
                plan_id = Some(value.into_owned());
            }
            "status" => {
                if !PLAN_STATUSES.contains(&value.as_ref()) {
                    return Err(ApiError::invalid("status", "must be a plan status"));
                }
                status = Some(value.into_owned());
            }
            "limit" => limit = page_limit(&value)?,
            "cursor" => {
                let pk = value
                    .parse::<i64>()
                    .map_err(|_| ApiError::invalid("cursor", "must be a next_cursor we gave"))?;
                before_pk = Some(pk);
            }
            _ => {
                return Err(ApiError::invalid(
                    "query",
                    "takes only search, plan_id, status, limit and cursor",
                ));
            }
        }
    }
    let filter = customers::ListFilter {
        search: search.as_deref(),
        plan_id: plan_id.as_deref(),
        status: status.as_deref(),
        limit: limit + 1,
        before_pk,
    };
    let mut conn = pool.acquire().await?;
    let mut found = customers::list(&mut conn, &filter).await?;
    let more = found.len() as i64 > limit;
    found.truncate(limit as usize);
    let next_cursor = more
        .then(|| found.last().map(|c| c.pk.to_string()))
        .flatten();
    let data: Vec<Value> = found
        .iter()
        .map(|c| {
            let plans: Vec<Value> = c
                .plans
                .iter()
                .map(|(plan_id, status)| serde_json::json!({"plan_id": plan_id, "status": status}))
                .collect();
            serde_json::json!({
                "id": c.id, "name": c.name, "email": c.email, "plans": plans,
                "created_at": time(Some(c.created_at)),
            })
        })
        .collect();
    Ok(serde_json::json!({"data": data, "next_cursor": next_cursor}))
}

/// `GET /v1/customers/{id}/usage?feature_id=&from=&to=&group_by=day|hour`: usage totals per
/// bucket; with `Accept: text/csv`, the raw records (the seeds' "export raw event data").
pub(super) async fn usage(
    state: &AppState,
    id: &str,
    query: Option<&str>,
    csv: bool,
) -> Result<HttpResponse, ApiError> {
    input::id("id", id)?;
    let (mut feature, mut from, mut to, mut bucket) = (None, None, None, balances::Bucket::Day);
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
                    "day" => balances::Bucket::Day,
                    "hour" => balances::Bucket::Hour,
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
    input::id("feature_id", &feature)?;
    known_feature(&state.catalog, &feature)?;
    let to = to.unwrap_or_else(Utc::now);
    let from = from.unwrap_or(to - chrono::Duration::days(30));
    let longest = match bucket {
        balances::Bucket::Day => chrono::Duration::days(366),
        balances::Bucket::Hour => chrono::Duration::days(31),
    };
    if from >= to || to - from > longest {
        return Err(ApiError::invalid(
            "from",
            "must be before `to`, at most 366 days (by day) or 31 days (by hour) before it",
        ));
    }
    let mut conn = state.pool.acquire().await?;
    let customer = find(&mut conn, id).await?;
    if csv {
        let records =
            balances::usage_records(&mut conn, customer.pk, &feature, (from, to), MAX_CSV_ROWS)
                .await?;
        return Ok(usage_csv(&records));
    }
    let totals =
        balances::usage_totals(&mut conn, customer.pk, &feature, (from, to), bucket).await?;
    let data: Vec<Value> = totals
        .iter()
        .map(|(at, total)| serde_json::json!({"bucket": time(Some(*at)), "total": total}))
        .collect();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "customer_id": id, "feature_id": feature, "from": time(Some(from)),
            "to": time(Some(to)), "data": data,
        }),
    ))
}

/// Usage records as CSV: a header row, then one row per record, every field quoted.
fn usage_csv(records: &[balances::UsageRecord]) -> HttpResponse {
    fn field(text: &str) -> String {
        format!("\"{}\"", text.replace('"', "\"\""))
    }
    let mut body = String::from("id,feature_id,value,idempotency_key,recorded_at\n");
    for r in records {
        let at = time(Some(r.recorded_at));
        let row = [
            r.id.to_string(),
            field(&r.feature_id),
            r.value.to_string(),
            field(r.idempotency_key.as_deref().unwrap_or_default()),
            field(at.as_str().unwrap_or_default()),
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

/// `POST /v1/balances`: grant, set or deduct a balance until the feature's next reset, once
/// per `idempotency_key`.
pub(super) async fn edit_balance(
    state: &AppState,
    body: EditBalance,
) -> Result<HttpResponse, ApiError> {
    Ok(json(
        StatusCode::OK,
        &apply_balance_edit(&state.pool, &state.catalog, body, API_ACTOR).await?,
    ))
}

/// `POST /v1/balances`' answer (the API's, the console's and the CLI's); `actor` is recorded
/// as who made the edit.
pub(crate) async fn apply_balance_edit(
    pool: &PgPool,
    catalog: &Catalog,
    body: EditBalance,
    actor: &str,
) -> Result<Value, ApiError> {
    input::id("customer_id", &body.customer_id)?;
    input::id("feature_id", &body.feature_id)?;
    let op = match body.op.as_str() {
        "grant" => balances::EditOp::Grant,
        "set" => balances::EditOp::Set,
        "deduct" => balances::EditOp::Deduct,
        _ => return Err(ApiError::invalid("op", "must be grant, set or deduct")),
    };
    input::amount("amount", body.amount)?;
    input::text("reason", body.reason.as_deref(), MAX_REASON_CHARS)?;
    if let Some(key) = &body.idempotency_key {
        input::id("idempotency_key", key)?;
    }
    let mut tx = pool.begin().await?;
    let customer = find(&mut tx, &body.customer_id).await?;
    known_feature(catalog, &body.feature_id)?;
    let edit = balances::Edit {
        feature_id: &body.feature_id,
        op,
        amount: body.amount,
        reason: body.reason.as_deref(),
        actor,
        idempotency_key: body.idempotency_key.as_deref(),
    };
    let (balance, duplicate) = match balances::edit(&mut tx, customer.pk, &edit).await? {
        balances::Edited::Done { balance, duplicate } => (balance, duplicate),
        balances::Edited::NoBalance => {
            return Err(ApiError::NotFound {
                code: "balance_not_found",
                what: format!(
                    "a balance of {} for customer {} (no plan of theirs grants it)",
                    body.feature_id, body.customer_id
                ),
            });
        }
        balances::Edited::Unlimited => {
            return Err(ApiError::invalid(
                "feature_id",
                "the feature is unlimited for this customer: there is no balance to edit",
            ));
        }
        balances::Edited::KeyReused { differs } => {
            return Err(ApiError::Refused {
                code: super::error::IDEMPOTENCY_ERROR,
                message: format!(
                    "idempotency_key {} was used for another balance edit ({differs} differs): \
                     use a new key",
                    body.idempotency_key.as_deref().unwrap_or_default()
                ),
            });
        }
    };
    tx.commit().await?;
    Ok(serde_json::json!({
        "customer_id": body.customer_id, "feature_id": body.feature_id,
        "balance": balance.remaining(), "included": balance.included,
        "adjustment": balance.adjustment, "used": balance.used,
        "next_reset_at": time(balance.next_reset_at), "duplicate": duplicate,
    }))
}

/// `GET /v1/customers/{id}/invoices/{invoice_id}`: one of the customer's invoices, as the
/// view lists it, with its period and lines.
pub(super) async fn invoice(
    state: &AppState,
    id: &str,
    invoice_id: &str,
) -> Result<HttpResponse, ApiError> {
    input::id("id", id)?;
    input::id("invoice_id", invoice_id)?;
    let mut conn = state.pool.acquire().await?;
    let customer = find(&mut conn, id).await?;
    let i = invoices::detail(&mut conn, customer.pk, invoice_id)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            code: "invoice_not_found",
            what: format!("invoice {invoice_id} of customer {id}"),
        })?;
    let lines: Option<Vec<Value>> = i.lines.as_ref().map(|lines| {
        lines
            .iter()
            .map(|l| {
                serde_json::json!({
                    "id": l.id, "description": l.description, "amount": l.amount,
                    "currency": l.currency, "quantity": l.quantity,
                    "period_start": time(l.period_start), "period_end": time(l.period_end),
                    "price_id": l.price_id, "plan_id": l.plan_id, "discount": l.discount,
                })
            })
            .collect()
    });
    let amounts = &i.discount_amounts.0;
    let ids: Vec<String> = amounts.iter().map(|a| a.discount.clone()).collect();
    let known = discounts::coupons_of(&mut conn, &ids).await?;
    let discounts: Vec<Value> = amounts
        .iter()
        .map(|a| {
            let (coupon, reward) = known
                .iter()
                .find(|(id, _, _)| *id == a.discount)
                .map(|(_, coupon, reward)| (Some(coupon), reward.as_ref()))
                .unwrap_or_default();
            serde_json::json!({
                "discount_id": a.discount, "amount": a.amount,
                "coupon_id": coupon, "reward_id": reward,
            })
        })
        .collect();
    let mut answer = invoice_summary(&i.invoice);
    answer["customer_id"] = customer.id.into();
    answer["billing_reason"] = i.invoice.billing_reason.clone().into();
    answer["period_start"] = time(i.period_start);
    answer["period_end"] = time(i.period_end);
    answer["lines"] = lines.into();
    answer["discounts"] = discounts.into();
    Ok(json(StatusCode::OK, &answer))
}

/// An invoice as the customer view lists it.
fn invoice_summary(i: &invoices::InvoiceRow) -> Value {
    serde_json::json!({
        "stripe_id": i.stripe_id, "status": i.status, "total": i.total,
        "subtotal": i.subtotal, "total_discount": i.total_discount,
        "currency": i.currency, "plan_ids": i.plan_ids,
        "hosted_invoice_url": i.hosted_invoice_url, "created_at": time(Some(i.created_at)),
    })
}

pub(super) async fn find(conn: &mut PgConnection, id: &str) -> Result<Customer, ApiError> {
    customers::by_id(conn, id)
        .await?
        .ok_or_else(|| customer_not_found(id))
}

fn customer_not_found(id: &str) -> ApiError {
    ApiError::NotFound {
        code: "customer_not_found",
        what: format!("customer {id}"),
    }
}

fn known_feature(catalog: &Catalog, id: &str) -> Result<(), ApiError> {
    match catalog.feature(id) {
        Some(_) => Ok(()),
        None => Err(ApiError::NotFound {
            code: "feature_not_found",
            what: format!("feature {id}"),
        }),
    }
}

/// The longest name or fingerprint, in characters.
const MAX_TEXT_CHARS: usize = 255;

/// The most usage records one CSV export holds (narrow `from`/`to` for more).
const MAX_CSV_ROWS: i64 = 100_000;

/// A page of the customer list: by default, and at most.
pub(super) const DEFAULT_PAGE: i64 = 20;
const MAX_PAGE: i64 = 100;

/// A list's `limit`: 1 to 100.
pub(super) fn page_limit(value: &str) -> Result<i64, ApiError> {
    value
        .parse::<i64>()
        .ok()
        .filter(|n| (1..=MAX_PAGE).contains(n))
        .ok_or_else(|| ApiError::invalid("limit", "must be 1 to 100"))
}

/// The statuses a plan can have (`status=` of the customer list, the console's filter).
pub(crate) const PLAN_STATUSES: &[&str] = &[
    "active",
    "trialing",
    "past_due",
    "unpaid",
    "incomplete",
    "paused",
    "scheduled",
    "canceled",
    "expired",
];

/// The longest reason of a balance edit, in characters.
const MAX_REASON_CHARS: usize = 500;

/// Who made an edit through the API (one API token, so one label).
pub(super) const API_ACTOR: &str = "api";

/// The longest email address (RFC 5321's path limit, less the brackets).
const MAX_EMAIL_CHARS: usize = 320;

/// A `stripe_id` from a body, checked before anything else about Stripe: it goes into
/// Stripe API paths.
fn valid_stripe_id(stripe_id: Option<&str>) -> Result<(), ApiError> {
    if stripe_id.is_some_and(|s| !ids::is_valid("cus_", s)) {
        return Err(ApiError::invalid(
            "stripe_id",
            "must be a Stripe customer id (cus_ and letters, digits or _)",
        ));
    }
    Ok(())
}

/// Links now (so events map at once); the job writes our id into the Stripe customer's
/// metadata and imports its subscriptions and skipped events.
async fn link(conn: &mut PgConnection, customer_pk: i64, stripe_id: &str) -> Result<(), ApiError> {
    if !customers::link_stripe(conn, customer_pk, stripe_id).await? {
        return Err(ApiError::Conflict {
            code: "stripe_id_conflict",
            message: "the customer or that Stripe customer is linked already".to_owned(),
        });
    }
    let job = jobs::LinkCustomer {
        customer_pk,
        stripe_id: stripe_id.to_owned(),
    };
    outbox::enqueue(conn, &job).await?;
    Ok(())
}

fn validate_fields(
    name: Option<&str>,
    email: Option<&str>,
    metadata: Option<&Value>,
) -> Result<(), ApiError> {
    input::text("name", name, MAX_TEXT_CHARS)?;
    if let Some(email) = email
        && (email.chars().count() > MAX_EMAIL_CHARS || !email.contains('@'))
    {
        return Err(ApiError::invalid("email", "is not an email address"));
    }
    input::metadata(metadata)
}

/// The customer as the API shows it: its fields, the plans that have not ended
/// (`products`) and those that did (`ended_products`), balances, invoices, what is due
/// (`payment_due`: open invoices of plans not paid up) and the discounts that apply.
async fn view(
    conn: &mut PgConnection,
    catalog: &Catalog,
    customer: &Customer,
) -> Result<Value, sqlx::Error> {
    let products = plans::products(conn, customer.pk).await?;
    let ended = plans::ended_products(conn, customer.pk).await?;
    let balances = balances::all(conn, customer.pk).await?;
    let invoices = invoices::of_customer(conn, customer.pk).await?;
    let due = invoices::payment_due(conn, customer.pk).await?;
    let discounts = discounts::active(conn, customer.pk).await?;
    let mut view = serde_json::to_value(customer).expect("customers serialize");
    view["products"] = products.iter().map(|p| product(catalog, p)).collect();
    view["ended_products"] = ended.iter().map(|p| product(catalog, p)).collect();
    view["balances"] = balances.iter().map(balance).collect();
    view["entities"] = entities::in_view(conn, catalog, customer.pk).await?.into();
    view["invoices"] = invoices.iter().map(invoice_summary).collect();
    view["discounts"] = discounts.iter().map(discount).collect();
    view["payment_due"] = due
        .iter()
        .map(|i| {
            serde_json::json!({
                "stripe_id": i.stripe_id, "plan_ids": i.plan_ids, "total": i.total,
                "currency": i.currency, "billing_reason": i.billing_reason,
                "plan_status": i.plan_status, "hosted_invoice_url": i.hosted_invoice_url,
            })
        })
        .collect();
    Ok(view)
}

/// A discount that applies, with what it takes off (null until its coupon is known).
fn discount(d: &discounts::DiscountRow) -> Value {
    serde_json::json!({
        "id": d.id, "reward_id": d.reward_id, "coupon_id": d.coupon_id, "name": d.name,
        "promotion_code_id": d.promotion_code_id, "percent_off": d.percent_off,
        "amount_off": d.amount_off, "currency": d.currency, "duration": d.duration,
        "duration_in_months": d.duration_in_months, "start": time(Some(d.start_at)),
        "end": time(d.end_at), "subscription_id": d.stripe_subscription_id,
        "plan_id": d.plan_id,
    })
}

/// A balance as the view shows it.
pub(super) fn balance(b: &balances::Balance) -> Value {
    serde_json::json!({
        "feature_id": b.feature_id, "included": b.included, "used": b.used,
        "adjustment": b.adjustment, "balance": b.remaining(), "unlimited": b.unlimited,
        "suspended": b.suspended, "next_reset_at": time(b.next_reset_at),
    })
}

/// A plan as the view shows it: its state, its history's times, and its catalog price
/// (`interval`, `amount` and `currency` are null for a plan without a price).
pub(super) fn product(catalog: &Catalog, p: &plans::Product) -> Value {
    let price = catalog
        .plan(&p.plan_id)
        .and_then(|plan| plan.price.as_ref());
    let interval = price.map(|price| match price.interval {
        Interval::Day => "day",
        Interval::Week => "week",
        Interval::Month => "month",
        Interval::Year => "year",
    });
    serde_json::json!({
        "plan_id": p.plan_id, "status": p.status,
        "stripe_subscription_id": p.stripe_subscription_id,
        "current_period_end": time(p.current_period_end),
        "cancel_at_period_end": p.cancel_at_period_end, "cancel_at": time(p.cancel_at),
        "canceled_at": time(p.canceled_at), "quantity": p.quantity,
        "trial_end": time(p.trial_end),
        "started_at": time(Some(p.started_at)), "ended_at": time(p.ended_at),
        "interval": interval, "amount": price.map(|price| price.amount),
        "currency": price.map(|price| &price.currency),
        "next_renewal_at": time(next_renewal(p)),
    })
}

/// When a plan renews: the end of its period, for a subscription that Stripe will renew
/// then (active, trialing or past due, neither set to cancel at the period end nor at a
/// date before it).
fn next_renewal(p: &plans::Product) -> Option<DateTime<Utc>> {
    let end = p.current_period_end?;
    let renews = p.stripe_subscription_id.is_some()
        && matches!(p.status.as_str(), "active" | "trialing" | "past_due")
        && !p.cancel_at_period_end
        && p.cancel_at.is_none_or(|at| at > end);
    renews.then_some(end)
}

/// A time as the API has always written it (Postgres' JSON form): seconds, then as many
/// fractional digits as it has (up to microseconds), and `+00:00`.
pub(super) fn time(at: Option<DateTime<Utc>>) -> Value {
    let Some(at) = at else {
        return Value::Null;
    };
    let mut text = at.format("%Y-%m-%dT%H:%M:%S").to_string();
    let micros = at.timestamp_subsec_micros();
    if micros > 0 {
        let fraction = format!("{micros:06}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text.push_str("+00:00");
    Value::String(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_as_postgres_writes_them() {
        let at = |s: &str| Some(s.parse::<DateTime<Utc>>().unwrap());
        assert_eq!(
            time(at("2026-12-18T11:06:40Z")),
            "2026-12-18T11:06:40+00:00"
        );
        assert_eq!(
            time(at("2027-01-01T04:08:09.464915Z")),
            "2027-01-01T04:08:09.464915+00:00"
        );
        assert_eq!(
            time(at("2027-01-01T04:08:09.4649Z")),
            "2027-01-01T04:08:09.4649+00:00"
        );
        assert_eq!(time(None), Value::Null);
    }

    #[test]
    fn a_plan_renews_at_its_period_end_only_when_stripe_will_renew_it() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let end = at("2027-01-01T00:00:00Z");
        let pro = plans::Product {
            plan_id: "pro".to_owned(),
            status: "active".to_owned(),
            stripe_subscription_id: Some("sub_1".to_owned()),
            current_period_end: Some(end),
            cancel_at_period_end: false,
            cancel_at: None,
            canceled_at: None,
            quantity: 1,
            trial_end: None,
            started_at: at("2026-12-01T00:00:00Z"),
            ended_at: None,
        };
        let with = |f: &dyn Fn(&mut plans::Product)| {
            let mut p = pro.clone();
            f(&mut p);
            next_renewal(&p)
        };
        assert_eq!(next_renewal(&pro), Some(end));
        assert_eq!(with(&|p| p.status = "past_due".to_owned()), Some(end));
        assert_eq!(with(&|p| p.status = "paused".to_owned()), None);
        assert_eq!(with(&|p| p.status = "unpaid".to_owned()), None);
        assert_eq!(with(&|p| p.status = "expired".to_owned()), None);
        assert_eq!(with(&|p| p.cancel_at_period_end = true), None);
        assert_eq!(with(&|p| p.cancel_at = Some(end)), None);
        let later = at("2027-03-01T00:00:00Z");
        assert_eq!(with(&|p| p.cancel_at = Some(later)), Some(end));
        assert_eq!(with(&|p| p.stripe_subscription_id = None), None);
    }
}
