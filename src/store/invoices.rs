//! Invoices as Stripe reports them, with their lines; newest event wins (ties by status
//! precedence).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use sqlx::types::Json;

use super::{activity, attaches};

/// An invoice as one event shows it.
#[derive(Debug, Clone)]
pub struct InvoiceState<'a> {
    pub stripe_id: &'a str,
    pub status: &'a str,
    pub billing_reason: Option<&'a str>,
    pub total: i64,
    pub currency: &'a str,
    pub plan_ids: Vec<String>,
    pub hosted_invoice_url: Option<&'a str>,
    pub subscription_id: Option<&'a str>,
    pub period_start: Option<DateTime<Utc>>,
    pub period_end: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub event_created: i64,
    pub lines: Vec<Line>,
    /// Before discounts (None when the payload has no `subtotal`).
    pub subtotal: Option<i64>,
    /// What the discounts took off, per discount (`total_discount_amounts`).
    pub discount_amounts: Vec<DiscountAmount>,
}

/// What one discount took off an invoice (or a line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscountAmount {
    /// The Stripe discount (`di_...`).
    pub discount: String,
    pub amount: i64,
}

/// The sum of `amounts`, saturating.
pub fn total_discount(amounts: &[DiscountAmount]) -> i64 {
    amounts
        .iter()
        .fold(0i64, |sum, a| sum.saturating_add(a.amount))
}

/// A line of an invoice, as its newest event shows it (kept as JSON on the invoice).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub id: Option<String>,
    pub description: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub quantity: Option<i64>,
    pub period_start: Option<DateTime<Utc>>,
    pub period_end: Option<DateTime<Utc>>,
    pub price_id: Option<String>,
    /// The catalog plan the price (else the line's metadata) maps to.
    pub plan_id: Option<String>,
    /// What discounts took off the line (0 for lines kept before discounts were).
    #[serde(default)]
    pub discount: i64,
}

/// Precedence of invoice statuses for events of the same second.
pub fn status_rank(status: &str) -> i32 {
    match status {
        "draft" => 0,
        "open" => 1,
        "uncollectible" => 2,
        _ => 3, // paid, void
    }
}

/// Whose invoice it is: our customer, or the one linked to a Stripe customer id.
#[derive(Debug, Clone, Copy)]
pub enum Owner<'a> {
    Customer(i64),
    StripeCustomer(&'a str),
}

/// What [`record`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    pub customer_pk: i64,
    /// False when a newer event for the invoice was applied already.
    pub fresh: bool,
}

/// What recording an invoice also writes, in the same statement, once its customer is found
/// (when [`record_many`] answers `Some` for it).
#[derive(Debug, Clone, Default)]
pub struct Also<'a> {
    /// An entry of the customer's timeline, written by [`activity::record_many`]'s rule
    /// (once per source and invoice).
    pub entry: Option<Entry<'a>>,
    /// The invoice was paid: the attaches waiting on its subscription's first payment are
    /// done ([`attaches::first_payment_made`]).
    pub paid: bool,
}

/// A timeline entry that recording an invoice also writes ([`Also::entry`]).
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub kind: &'a str,
    /// What said it: an event's id and `created`.
    pub source: (&'a str, i64),
    pub detail: serde_json::Value,
}

/// Inserts or updates the invoice of `owner`. `None` (and no change) when no customer is
/// linked to the Stripe customer id.
///
/// One statement, so applying an invoice event costs one round trip once its customer is
/// linked; that counts most where Postgres is a network hop away.
pub async fn record(
    conn: &mut PgConnection,
    owner: Owner<'_>,
    i: &InvoiceState<'_>,
) -> Result<Option<Recorded>, sqlx::Error> {
    let mut recorded = record_many(conn, &[(owner, i, Also::default())]).await?;
    Ok(recorded.pop().flatten())
}

/// The columns of [`record_many`]'s input, with their SQL types (each bound as an array).
const INPUT: [(&str, &str); 24] = [
    ("pk", "bigint"),
    ("stripe_customer", "text"),
    ("stripe_id", "text"),
    ("status", "text"),
    ("billing_reason", "text"),
    ("total", "bigint"),
    ("currency", "text"),
    ("plan_ids", "jsonb"),
    ("hosted_invoice_url", "text"),
    ("subscription_id", "text"),
    ("period_start", "timestamptz"),
    ("period_end", "timestamptz"),
    ("created_at", "timestamptz"),
    ("source_created", "bigint"),
    ("source_rank", "int"),
    ("lines", "jsonb"),
    ("subtotal", "bigint"),
    ("total_discount", "bigint"),
    ("discount_amounts", "jsonb"),
    // Also
    ("said_kind", "text"),
    ("said_source", "text"),
    ("said_at", "bigint"),
    ("said_detail", "jsonb"),
    ("paid", "bool"),
];

/// [`record_many`]'s statement: for many invoices, or for one ([`super::rows`]).
static RECORD: super::rows::Statement = super::rows::Statement::new(record_sql);

fn record_sql(many: bool) -> String {
    let input = super::rows::input(many, &INPUT);
    format!(
        "WITH i AS ({input}),
         c AS (
             SELECT i.*, c.pk AS customer_pk FROM i
             CROSS JOIN LATERAL (SELECT pk FROM customers
                                 WHERE pk = i.pk OR stripe_id = i.stripe_customer
                                 LIMIT 1) c
         ),
         v AS (
             INSERT INTO invoices AS v (customer_pk, stripe_id, status, billing_reason, total,
                     currency, plan_ids, hosted_invoice_url, stripe_subscription_id,
                     period_start, period_end, created_at, source_created, source_rank, lines,
                     subtotal, total_discount, discount_amounts)
             SELECT c.customer_pk, c.stripe_id, c.status, c.billing_reason, c.total,
                    c.currency, ARRAY(SELECT jsonb_array_elements_text(c.plan_ids)),
                    c.hosted_invoice_url, c.subscription_id, c.period_start, c.period_end,
                    c.created_at, c.source_created, c.source_rank, c.lines, c.subtotal,
                    c.total_discount, c.discount_amounts
             FROM c
             ON CONFLICT (stripe_id) DO UPDATE SET
                 status = EXCLUDED.status, billing_reason = EXCLUDED.billing_reason,
                 total = EXCLUDED.total, currency = EXCLUDED.currency,
                 plan_ids = EXCLUDED.plan_ids,
                 hosted_invoice_url = coalesce(EXCLUDED.hosted_invoice_url, v.hosted_invoice_url),
                 stripe_subscription_id = EXCLUDED.stripe_subscription_id,
                 period_start = EXCLUDED.period_start, period_end = EXCLUDED.period_end,
                 source_created = EXCLUDED.source_created, source_rank = EXCLUDED.source_rank,
                 lines = EXCLUDED.lines, subtotal = EXCLUDED.subtotal,
                 total_discount = EXCLUDED.total_discount,
                 discount_amounts = EXCLUDED.discount_amounts
             WHERE (v.source_created, v.source_rank)
                   <= (EXCLUDED.source_created, EXCLUDED.source_rank)
             RETURNING v.stripe_id
         ),
         said AS ({said}),
         paid AS ({paid})
         SELECT c.n, c.customer_pk, c.stripe_id IN (SELECT stripe_id FROM v) AS fresh FROM c",
        said = activity::insert_sql(
            "SELECT c.customer_pk, c.said_kind AS kind, c.said_source AS source,
                    c.said_at AS at, c.said_detail AS detail
             FROM c WHERE c.said_kind IS NOT NULL"
        ),
        paid = attaches::first_payment_sql("SELECT c.subscription_id FROM c WHERE c.paid"),
    )
}

/// [`record`] for many invoices (no invoice twice) in one statement, each with what it
/// also writes: what each answers, in their order.
pub async fn record_many(
    conn: &mut PgConnection,
    invoices: &[(Owner<'_>, &InvoiceState<'_>, Also<'_>)],
) -> Result<Vec<Option<Recorded>>, sqlx::Error> {
    let n = invoices.len();
    let mut pks = Vec::with_capacity(n);
    let mut stripe_customers = Vec::with_capacity(n);
    for (owner, _, _) in invoices {
        let (pk, stripe_customer) = match owner {
            Owner::Customer(pk) => (Some(*pk), None),
            Owner::StripeCustomer(id) => (None, Some(*id)),
        };
        pks.push(pk);
        stripe_customers.push(stripe_customer);
    }
    let states: Vec<&InvoiceState<'_>> = invoices.iter().map(|(_, i, _)| *i).collect();
    let also: Vec<&Also<'_>> = invoices.iter().map(|(_, _, a)| a).collect();
    let entries = || also.iter().map(|a| a.entry.as_ref());
    // One array per column, in `INPUT`'s order.
    macro_rules! column {
        ($f:expr) => {
            states.iter().map($f).collect::<Vec<_>>()
        };
    }
    let rows: Vec<(i64, i64, bool)> = sqlx::query_as(sqlx::AssertSqlSafe(RECORD.get(n > 1)))
        .bind(&pks)
        .bind(&stripe_customers)
        .bind(column!(|i| i.stripe_id))
        .bind(column!(|i| i.status))
        .bind(column!(|i| i.billing_reason))
        .bind(column!(|i| i.total))
        .bind(column!(|i| i.currency))
        .bind(column!(|i| Json(&i.plan_ids)))
        .bind(column!(|i| i.hosted_invoice_url))
        .bind(column!(|i| i.subscription_id))
        .bind(column!(|i| i.period_start))
        .bind(column!(|i| i.period_end))
        .bind(column!(|i| i.created_at))
        .bind(column!(|i| i.event_created))
        .bind(column!(|i| status_rank(i.status)))
        .bind(column!(|i| Json(&i.lines)))
        .bind(column!(|i| i.subtotal))
        .bind(column!(|i| total_discount(&i.discount_amounts)))
        .bind(column!(|i| Json(&i.discount_amounts)))
        .bind(entries().map(|e| e.map(|e| e.kind)).collect::<Vec<_>>())
        .bind(entries().map(|e| e.map(|e| e.source.0)).collect::<Vec<_>>())
        .bind(entries().map(|e| e.map(|e| e.source.1)).collect::<Vec<_>>())
        .bind(entries().map(|e| e.map(|e| &e.detail)).collect::<Vec<_>>())
        .bind(also.iter().map(|a| a.paid).collect::<Vec<_>>())
        .fetch_all(conn)
        .await?;
    let mut recorded = vec![None; n];
    for (ordinal, customer_pk, fresh) in rows {
        recorded[ordinal as usize - 1] = Some(Recorded { customer_pk, fresh });
    }
    Ok(recorded)
}

/// An invoice of a customer as the API shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvoiceRow {
    pub stripe_id: String,
    pub status: String,
    pub billing_reason: Option<String>,
    pub total: i64,
    pub currency: String,
    pub plan_ids: Vec<String>,
    pub hosted_invoice_url: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Before discounts; None for an invoice recorded before it was kept.
    pub subtotal: Option<i64>,
    /// What discounts took off.
    pub total_discount: i64,
    /// The status of the plan it bills (for [`payment_due`]).
    pub plan_status: Option<String>,
}

/// The customer's invoices, newest first.
pub async fn of_customer(
    conn: &mut PgConnection,
    customer_pk: i64,
) -> Result<Vec<InvoiceRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT stripe_id, status, billing_reason, total, currency, plan_ids,
                hosted_invoice_url, created_at, subtotal, total_discount,
                NULL::text AS plan_status
         FROM invoices WHERE customer_pk = $1 ORDER BY created_at DESC, stripe_id",
    )
    .bind(customer_pk)
    .fetch_all(conn)
    .await
}

/// One invoice with its lines, as `GET /v1/customers/{id}/invoices/{invoice_id}` shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvoiceDetail {
    #[sqlx(flatten)]
    pub invoice: InvoiceRow,
    pub period_start: Option<DateTime<Utc>>,
    pub period_end: Option<DateTime<Utc>>,
    /// None for an invoice recorded before lines were kept.
    pub lines: Option<Json<Vec<Line>>>,
    /// What each discount took off.
    pub discount_amounts: Json<Vec<DiscountAmount>>,
}

/// The customer's invoice `stripe_id` with its lines; None if it is not theirs.
pub async fn detail(
    conn: &mut PgConnection,
    customer_pk: i64,
    stripe_id: &str,
) -> Result<Option<InvoiceDetail>, sqlx::Error> {
    sqlx::query_as(
        "SELECT stripe_id, status, billing_reason, total, currency, plan_ids,
                hosted_invoice_url, created_at, subtotal, total_discount,
                NULL::text AS plan_status, period_start, period_end, lines, discount_amounts
         FROM invoices WHERE stripe_id = $1 AND customer_pk = $2",
    )
    .bind(stripe_id)
    .bind(customer_pk)
    .fetch_optional(conn)
    .await
}

/// What the customer must pay before access is whole again: the open invoices of
/// subscriptions whose plan is not paid up, newest first.
pub async fn payment_due(
    conn: &mut PgConnection,
    customer_pk: i64,
) -> Result<Vec<InvoiceRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT v.stripe_id, v.status, v.billing_reason, v.total, v.currency, v.plan_ids,
                v.hosted_invoice_url, v.created_at, v.subtotal, v.total_discount,
                p.status AS plan_status
         FROM invoices v
         JOIN customer_plans p ON p.stripe_subscription_id = v.stripe_subscription_id
         WHERE v.customer_pk = $1 AND v.status = 'open'
           AND p.status IN ('past_due', 'unpaid', 'incomplete', 'paused')
         ORDER BY v.created_at DESC, v.stripe_id",
    )
    .bind(customer_pk)
    .fetch_all(conn)
    .await
}
