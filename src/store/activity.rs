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
    let said = Said {
        customer_pk,
        kind,
        source: None,
        detail,
    };
    record_many(conn, &[said]).await
}

/// An entry [`record_many`] writes.
#[derive(Debug, Clone)]
pub struct Said<'a> {
    pub customer_pk: i64,
    pub kind: &'a str,
    /// What said it (an event's id and `created`); None: the current source and time
    /// ([`set_source`]).
    pub source: Option<(&'a str, i64)>,
    pub detail: serde_json::Value,
}

/// [`record`] for many entries (of distinct sources) in one statement, each under its own
/// source.
pub async fn record_many(conn: &mut PgConnection, said: &[Said<'_>]) -> Result<(), sqlx::Error> {
    let customers: Vec<i64> = said.iter().map(|s| s.customer_pk).collect();
    let kinds: Vec<&str> = said.iter().map(|s| s.kind).collect();
    let sources: Vec<Option<&str>> = said.iter().map(|s| s.source.map(|(id, _)| id)).collect();
    let ats: Vec<Option<i64>> = said.iter().map(|s| s.source.map(|(_, at)| at)).collect();
    let details: Vec<&serde_json::Value> = said.iter().map(|s| &s.detail).collect();
    sqlx::query(sqlx::AssertSqlSafe(RECORD.get(said.len() > 1)))
        .bind(&customers)
        .bind(&kinds)
        .bind(&sources)
        .bind(&ats)
        .bind(&details)
        .execute(conn)
        .await?;
    Ok(())
}

/// [`record_many`]'s statement: for many entries or for one ([`super::rows`]).
static RECORD: super::rows::Statement = super::rows::Statement::new(record_sql);

fn record_sql(many: bool) -> String {
    insert_sql(&super::rows::input(
        many,
        &[
            ("customer_pk", "bigint"),
            ("kind", "text"),
            ("source", "text"),
            ("at", "bigint"),
            ("detail", "jsonb"),
        ],
    ))
}

/// The statement that writes [`record_many`]'s entries, read from `rows` (a query of
/// `customer_pk`, `kind`, `source`, `at`, `detail`): also a part of a statement that records
/// what the entries are about (`store::invoices::record_many`).
pub(super) fn insert_sql(rows: &str) -> String {
    format!(
        "INSERT INTO activity (customer_pk, kind, at, source, detail)
         SELECT r.customer_pk, r.kind, coalesce(to_timestamp(r.at), activity_at()),
                coalesce(r.source, activity_source()), r.detail
         FROM ({rows}) AS r
         WHERE NOT EXISTS (SELECT 1 FROM activity a
                           WHERE a.customer_pk = r.customer_pk AND a.kind = r.kind
                             AND a.source = coalesce(r.source, activity_source())
                             AND a.detail->>'invoice_id'
                                 IS NOT DISTINCT FROM r.detail->>'invoice_id')"
    )
}
