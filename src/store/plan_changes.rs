//! Plan changes an operator asked for (cancel, uncancel, quantity): durable requests that the
//! `plan.change` job carries out in Stripe, one row per request.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct PlanChange {
    pub id: String,
    #[serde(skip)]
    pub customer_pk: i64,
    pub plan_id: String,
    /// `cancel`, `uncancel` or `quantity`.
    pub kind: String,
    /// A cancel's moment: `period_end` or `now`.
    #[serde(rename = "at")]
    pub cancel_at: Option<String>,
    pub quantity: Option<i32>,
    pub prorate: bool,
    /// `pending` until the job ran, then `done` or `failed`.
    pub state: String,
    /// What a done change did: `canceled`, `ended`, `uncanceled`, `unscheduled`,
    /// `quantity`, or `unchanged` when the plan was that way already.
    pub outcome: Option<String>,
    pub error: Option<String>,
    pub stripe_subscription_id: Option<String>,
    #[serde(rename = "requested_by")]
    pub actor: String,
    #[serde(skip)]
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, customer_pk, plan_id, kind, cancel_at, quantity, prorate, state, \
                       outcome, error, stripe_subscription_id, actor, idempotency_key, \
                       created_at, updated_at";

/// What a new change asks for.
#[derive(Debug, Clone)]
pub struct NewChange<'a> {
    pub customer_pk: i64,
    pub plan_id: &'a str,
    pub kind: &'a str,
    pub cancel_at: Option<&'a str>,
    pub quantity: Option<i32>,
    pub prorate: bool,
    pub actor: &'a str,
    pub idempotency_key: Option<&'a str>,
}

impl super::requests::Table for PlanChange {
    const TABLE: &'static str = "plan_changes";
    const COLUMNS: &'static str = COLUMNS;
}

/// Records a pending change; `None` when the customer used its idempotency key before
/// (the unique index says so, whatever the concurrency).
pub async fn insert(
    conn: &mut PgConnection,
    change: &NewChange<'_>,
) -> Result<Option<PlanChange>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO plan_changes (id, customer_pk, plan_id, kind, cancel_at, quantity, prorate,
                                   actor, idempotency_key)
         VALUES ('pc_' || replace(gen_random_uuid()::text, '-', ''), $1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (customer_pk, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
         RETURNING {COLUMNS}"
    )))
    .bind(change.customer_pk)
    .bind(change.plan_id)
    .bind(change.kind)
    .bind(change.cancel_at)
    .bind(change.quantity)
    .bind(change.prorate)
    .bind(change.actor)
    .bind(change.idempotency_key)
    .fetch_optional(conn)
    .await
}

pub async fn get(conn: &mut PgConnection, id: &str) -> Result<Option<PlanChange>, sqlx::Error> {
    super::requests::get(conn, id).await
}

/// A pending change was carried out: `outcome` says what it did.
pub async fn finish(
    conn: &mut PgConnection,
    id: &str,
    outcome: &str,
    subscription_id: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE plan_changes SET state = 'done', outcome = $2,
                stripe_subscription_id = coalesce($3, stripe_subscription_id), updated_at = now()
         WHERE id = $1 AND state = 'pending'",
    )
    .bind(id)
    .bind(outcome)
    .bind(subscription_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
