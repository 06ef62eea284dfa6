//! Usage: recorded by `track` (once per idempotency key, counted in the balance), read back
//! summed per hour or day, or as the raw records.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::reset::reset_due;
use super::{Balance, current};

/// Records usage once per idempotency key; returns the balance after it and whether this
/// key was seen before.
pub async fn track(
    conn: &mut PgConnection,
    customer_pk: i64,
    feature_id: &str,
    value: i64,
    idempotency_key: Option<&str>,
) -> Result<(Option<Balance>, bool), sqlx::Error> {
    let recorded = sqlx::query(
        "INSERT INTO usage_events (customer_pk, feature_id, value, idempotency_key)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (customer_pk, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING",
    )
    .bind(customer_pk)
    .bind(feature_id)
    .bind(value)
    .bind(idempotency_key)
    .execute(&mut *conn)
    .await?;
    let duplicate = recorded.rows_affected() == 0;
    if !duplicate {
        reset_due(conn, customer_pk).await?;
        // Summed as numeric and capped at the bigint range: usage piling up past it must
        // neither fail every later track nor wrap.
        sqlx::query(
            "UPDATE balances
             SET used = least(greatest(used::numeric + $3, 0), 9223372036854775807)::bigint
             WHERE customer_pk = $1 AND feature_id = $2",
        )
        .bind(customer_pk)
        .bind(feature_id)
        .bind(value)
        .execute(&mut *conn)
        .await?;
    }
    Ok((current(conn, customer_pk, feature_id).await?, duplicate))
}

/// How [`usage_totals`] groups usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Hour,
    Day,
}

/// Usage of `feature_id` recorded in `[from, to)`, summed per hour or day (UTC), oldest first;
/// buckets without usage are left out.
pub async fn usage_totals(
    conn: &mut PgConnection,
    customer_pk: i64,
    feature_id: &str,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    bucket: Bucket,
) -> Result<Vec<(DateTime<Utc>, i64)>, sqlx::Error> {
    let unit = match bucket {
        Bucket::Hour => "hour",
        Bucket::Day => "day",
    };
    sqlx::query_as(
        "SELECT date_trunc($5, recorded_at, 'UTC') AS bucket,
                least(sum(value), 9223372036854775807)::bigint AS total
         FROM usage_events
         WHERE customer_pk = $1 AND feature_id = $2 AND recorded_at >= $3 AND recorded_at < $4
         GROUP BY 1 ORDER BY 1",
    )
    .bind(customer_pk)
    .bind(feature_id)
    .bind(from)
    .bind(to)
    .bind(unit)
    .fetch_all(conn)
    .await
}

/// One usage record as `track` stored it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UsageRecord {
    pub id: i64,
    pub feature_id: String,
    pub value: i64,
    pub idempotency_key: Option<String>,
    pub recorded_at: DateTime<Utc>,
}

/// The raw usage records of `feature_id` in `[from, to)`, oldest first, at most `limit`.
pub async fn usage_records(
    conn: &mut PgConnection,
    customer_pk: i64,
    feature_id: &str,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    limit: i64,
) -> Result<Vec<UsageRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, feature_id, value, idempotency_key, recorded_at
         FROM usage_events
         WHERE customer_pk = $1 AND feature_id = $2 AND recorded_at >= $3 AND recorded_at < $4
         ORDER BY recorded_at, id LIMIT $5",
    )
    .bind(customer_pk)
    .bind(feature_id)
    .bind(from)
    .bind(to)
    .bind(limit)
    .fetch_all(conn)
    .await
}
