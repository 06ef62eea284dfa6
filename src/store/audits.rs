//! The continuous audit's SQL (see [`crate::audit`]): its runs (migration 26), which
//! customers to audit, and our side of what it compares.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use crate::access::HELD_SQL;

/// One finished run, as the console and `/metrics` show it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Run {
    pub id: i64,
    pub scope: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub checked: i32,
    pub busy: i32,
    pub drifted: i32,
    pub repaired: i32,
    pub drift: serde_json::Value,
}

/// Starts a run: its id and start.
pub async fn start(pool: &PgPool, scope: &str) -> Result<(i64, DateTime<Utc>), sqlx::Error> {
    sqlx::query_as("INSERT INTO audits (scope) VALUES ($1) RETURNING id, started_at")
        .bind(scope)
        .fetch_one(pool)
        .await
}

/// What a run found, written when it finished.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub checked: i32,
    pub busy: i32,
    pub drifted: i32,
    pub repaired: i32,
    /// Differences by field.
    pub drift: BTreeMap<String, i64>,
}

pub async fn finish(
    pool: &PgPool,
    id: i64,
    next_since: DateTime<Utc>,
    counts: &Counts,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE audits SET finished_at = now(), next_since = $2, checked = $3, busy = $4,
                drifted = $5, repaired = $6, drift = $7
         WHERE id = $1",
    )
    .bind(id)
    .bind(next_since)
    .bind(counts.checked)
    .bind(counts.busy)
    .bind(counts.drifted)
    .bind(counts.repaired)
    .bind(sqlx::types::Json(&counts.drift))
    .execute(pool)
    .await?;
    Ok(())
}

/// The newest finished run.
pub async fn last(conn: &mut PgConnection) -> Result<Option<Run>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, scope, started_at, finished_at, checked, busy, drifted, repaired, drift
         FROM audits WHERE finished_at IS NOT NULL ORDER BY finished_at DESC, id DESC LIMIT 1",
    )
    .fetch_optional(conn)
    .await
}

/// Where the next "changed since" run starts: the newest finished run's `next_since`.
pub async fn next_since(conn: &mut PgConnection) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT next_since FROM audits WHERE finished_at IS NOT NULL
         ORDER BY finished_at DESC, id DESC LIMIT 1",
    )
    .fetch_optional(conn)
    .await
    .map(Option::flatten)
}

/// Differences found by all finished runs, by field (`reconciler_drift_total`), and when the
/// newest finished (`reconciler_audit_last_run_timestamp_seconds`).
pub async fn totals(pool: &PgPool) -> Result<(Vec<(String, i64)>, Option<f64>), sqlx::Error> {
    let drift = sqlx::query_as(
        "SELECT d.key, sum(d.value::bigint)::bigint FROM audits, jsonb_each_text(drift) d
         WHERE finished_at IS NOT NULL GROUP BY d.key ORDER BY d.key",
    )
    .fetch_all(pool)
    .await?;
    let last: Option<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM max(finished_at))::float8 FROM audits
         WHERE finished_at IS NOT NULL",
    )
    .fetch_one(pool)
    .await?;
    Ok((drift, last))
}

/// A customer linked to Stripe, to audit.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Linked {
    pub pk: i64,
    pub id: Option<String>,
    pub stripe_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    /// The `created` of the newest Stripe event whose name and email were copied.
    pub stripe_synced_created: i64,
}

const LINKED: &str = "SELECT pk, id, stripe_id, name, email, stripe_synced_created
                      FROM customers c WHERE stripe_id IS NOT NULL";

/// Every customer linked to Stripe.
pub async fn all_linked(conn: &mut PgConnection) -> Result<Vec<Linked>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{LINKED} ORDER BY pk")))
        .fetch_all(conn)
        .await
}

/// Linked customers whose row, plans (or their entities' plans) changed since `since`, or
/// whose Stripe customer had events received since then (an event skipped as stale changes
/// no row), and `sample` others picked at random.
pub async fn changed_and_sample(
    conn: &mut PgConnection,
    since: DateTime<Utc>,
    sample: i64,
) -> Result<Vec<Linked>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH changed AS (
             SELECT pk FROM customers WHERE updated_at >= $1
             UNION
             SELECT coalesce(o.parent_pk, o.pk) FROM customer_plans p
             JOIN customers o ON o.pk = p.customer_pk WHERE p.updated_at >= $1
             UNION
             SELECT c.pk FROM customers c
             WHERE c.stripe_id IN (SELECT customer_id FROM events
                                   WHERE received_at >= $1 AND customer_id IS NOT NULL)
         ), picked AS (
             SELECT pk FROM changed
             UNION
             (SELECT pk FROM customers WHERE stripe_id IS NOT NULL AND pk NOT IN (SELECT pk FROM changed)
              ORDER BY random() LIMIT $2)
         )
         {LINKED} AND pk IN (SELECT pk FROM picked) ORDER BY pk"
    )))
    .bind(since)
    .bind(sample)
    .fetch_all(conn)
    .await
}

/// The oldest queued (pending) work of a customer: its Stripe customer's events or its
/// jobs. While there is some, what the store says is about to change.
pub async fn queued_since(
    conn: &mut PgConnection,
    customer_pk: i64,
    stripe_id: &str,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT min(enqueued_at) FROM jobs
         WHERE state = 'pending' AND ordering_key IN ($1, 'customer:' || $2::text)",
    )
    .bind(stripe_id)
    .bind(customer_pk)
    .fetch_one(conn)
    .await
}

/// Our side of one plan of a Stripe subscription.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SubscriptionRow {
    pub plan_id: String,
    pub status: String,
    pub quantity: i32,
    pub cancel_at_period_end: bool,
    pub cancel_at: Option<DateTime<Utc>>,
    pub trial_end: Option<DateTime<Utc>>,
    /// The `created` (or read second) of the newest state applied to the subscription.
    pub source_created: Option<i64>,
}

/// Our rows of a subscription (one per plan it had), newest change first.
pub async fn subscription_rows(
    conn: &mut PgConnection,
    subscription_id: &str,
) -> Result<Vec<SubscriptionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT p.plan_id, p.status, p.quantity, p.cancel_at_period_end, p.cancel_at,
                p.trial_end, s.source_created
         FROM customer_plans p LEFT JOIN stripe_subscriptions s ON s.id = p.stripe_subscription_id
         WHERE p.stripe_subscription_id = $1
         ORDER BY p.updated_at DESC, p.id DESC",
    )
    .bind(subscription_id)
    .fetch_all(conn)
    .await
}

/// Subscriptions that hold a plan of the customer (or of its entities) in our store: held,
/// or `incomplete`.
pub async fn held_subscriptions(
    conn: &mut PgConnection,
    customer_pk: i64,
) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT p.stripe_subscription_id, p.plan_id, p.status FROM customer_plans p
         JOIN customers o ON o.pk = p.customer_pk
         WHERE (o.pk = $1 OR o.parent_pk = $1) AND p.stripe_subscription_id IS NOT NULL
           AND (p.status IN {HELD_SQL} OR p.status = 'incomplete')
         ORDER BY 1, 2"
    )))
    .bind(customer_pk)
    .fetch_all(conn)
    .await
}

/// A customer's name and email now, and the version of the last copy from Stripe.
pub async fn contact(conn: &mut PgConnection, pk: i64) -> Result<Option<Linked>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{LINKED} AND pk = $1")))
        .bind(pk)
        .fetch_optional(conn)
        .await
}
