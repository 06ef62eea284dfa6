//! The customer's timeline: rows of `activity`, written by triggers on `customer_plans` and
//! `balance_edits` (migration 16) with the source the writing transaction names here.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;

/// Names what the current transaction's changes come from (a Stripe event id, `api`, `cli`)
/// and when they happened (the event's `created`; else the transaction's time).
pub async fn set_source(
    conn: &mut PgConnection,
    source: &str,
    at: Option<i64>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT set_config('reconciler.source', $1, true),
                set_config('reconciler.at', coalesce($2::text, ''), true)",
    )
    .bind(source)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// One entry of the timeline.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Entry {
    #[serde(skip)]
    pub id: i64,
    pub kind: String,
    pub at: DateTime<Utc>,
    pub source: String,
    pub detail: serde_json::Value,
}

/// A customer's entries, newest first, after the keyset position `before` (`at`, `id`).
pub async fn page(
    conn: &mut PgConnection,
    customer_pk: i64,
    before: Option<(DateTime<Utc>, i64)>,
    limit: i64,
) -> Result<Vec<Entry>, sqlx::Error> {
    let (at, id) = before.unzip();
    sqlx::query_as(
        "SELECT id, kind, at, source, detail FROM activity
         WHERE customer_pk = $1 AND ($2::timestamptz IS NULL OR (at, id) < ($2, $3))
         ORDER BY at DESC, id DESC
         LIMIT $4",
    )
    .bind(customer_pk)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Records what an event said that changed no row (an invoice's payment outcome,
/// `invoice.paid` / `invoice.payment_failed`, a trial ending soon) under the current source,
/// once per source and invoice: a redelivered or re-applied event adds nothing.
pub async fn record(
    conn: &mut PgConnection,
    customer_pk: i64,
    kind: &str,
    detail: serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO activity (customer_pk, kind, at, source, detail)
         SELECT $1, $2, activity_at(), activity_source(), $3
         WHERE NOT EXISTS (SELECT 1 FROM activity
                           WHERE customer_pk = $1 AND kind = $2 AND source = activity_source()
                             AND detail->>'invoice_id' IS NOT DISTINCT FROM $3->>'invoice_id')",
    )
    .bind(customer_pk)
    .bind(kind)
    .bind(detail)
    .execute(conn)
    .await?;
    Ok(())
}
