//! Invoices as Stripe reports them, newest event wins (ties by status precedence).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

/// An invoice as one event shows it.
#[derive(Debug, Clone)]
pub struct InvoiceState<'a> {
    pub stripe_id: &'a str,
    pub customer_pk: i64,
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

/// Inserts or updates the invoice; false when a newer event for it was applied already.
pub async fn upsert(conn: &mut PgConnection, i: &InvoiceState<'_>) -> Result<bool, sqlx::Error> {
    let applied: Option<bool> = sqlx::query_scalar(
        "INSERT INTO invoices AS v (stripe_id, customer_pk, status, billing_reason, total, currency,
                 plan_ids, hosted_invoice_url, stripe_subscription_id, period_start, period_end,
                 created_at, source_created, source_rank)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (stripe_id) DO UPDATE SET
             status = EXCLUDED.status, billing_reason = EXCLUDED.billing_reason,
             total = EXCLUDED.total, currency = EXCLUDED.currency,
             plan_ids = EXCLUDED.plan_ids,
             hosted_invoice_url = coalesce(EXCLUDED.hosted_invoice_url, v.hosted_invoice_url),
             stripe_subscription_id = EXCLUDED.stripe_subscription_id,
             period_start = EXCLUDED.period_start, period_end = EXCLUDED.period_end,
             source_created = EXCLUDED.source_created, source_rank = EXCLUDED.source_rank
         WHERE (v.source_created, v.source_rank) <= (EXCLUDED.source_created, EXCLUDED.source_rank)
         RETURNING true",
    )
    .bind(i.stripe_id)
    .bind(i.customer_pk)
    .bind(i.status)
    .bind(i.billing_reason)
    .bind(i.total)
    .bind(i.currency)
    .bind(&i.plan_ids)
    .bind(i.hosted_invoice_url)
    .bind(i.subscription_id)
    .bind(i.period_start)
    .bind(i.period_end)
    .bind(i.created_at)
    .bind(i.event_created)
    .bind(status_rank(i.status))
    .fetch_optional(conn)
    .await?;
    Ok(applied.is_some())
}
