//! Pending attaches: a plan a customer asked for, waiting on Stripe (a direct subscription
//! or a Checkout Session completed later by webhook).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Attach {
    pub id: String,
    #[serde(skip)]
    pub customer_pk: i64,
    pub plan_id: String,
    pub state: String,
    pub checkout_url: Option<String>,
    #[serde(skip)]
    pub success_url: Option<String>,
    #[serde(skip)]
    pub cancel_url: Option<String>,
    pub stripe_subscription_id: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, customer_pk, plan_id, state, checkout_url, success_url, cancel_url, \
                       stripe_subscription_id, error, created_at, updated_at";

/// An attach still in flight: at most one per (customer, plan). The predicate of the unique
/// index `attaches_in_flight_key` (migration 7), which `create` must name to conflict on it.
const IN_FLIGHT: &str = "state IN ('pending', 'checkout_required', 'awaiting_payment')";

/// Records a new pending attach; `None` when one of the same plan for the customer is in
/// flight already (a unique index says so, whatever the concurrency).
pub async fn create(
    conn: &mut PgConnection,
    id: &str,
    customer_pk: i64,
    plan_id: &str,
    success_url: Option<&str>,
    cancel_url: Option<&str>,
) -> Result<Option<Attach>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO attaches (id, customer_pk, plan_id, state, success_url, cancel_url)
         VALUES ($1, $2, $3, 'pending', $4, $5)
         ON CONFLICT (customer_pk, plan_id) WHERE {IN_FLIGHT} DO NOTHING
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(customer_pk)
    .bind(plan_id)
    .bind(success_url)
    .bind(cancel_url)
    .fetch_optional(conn)
    .await
}

/// The customer's attach of `plan_id` that is still in flight, if any.
pub async fn in_flight(
    conn: &mut PgConnection,
    customer_pk: i64,
    plan_id: &str,
) -> Result<Option<Attach>, sqlx::Error> {
    newest_of_plan(conn, customer_pk, plan_id, IN_FLIGHT).await
}

/// The customer's latest attach of `plan_id` that succeeded, if any.
pub async fn latest_done(
    conn: &mut PgConnection,
    customer_pk: i64,
    plan_id: &str,
) -> Result<Option<Attach>, sqlx::Error> {
    let done = "state IN ('active', 'completed', 'scheduled')";
    newest_of_plan(conn, customer_pk, plan_id, done).await
}

/// The newest attach of `plan_id` for the customer whose state matches `states` (SQL).
async fn newest_of_plan(
    conn: &mut PgConnection,
    customer_pk: i64,
    plan_id: &str,
    states: &str,
) -> Result<Option<Attach>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM attaches
         WHERE customer_pk = $1 AND plan_id = $2 AND {states}
         ORDER BY created_at DESC, id DESC LIMIT 1"
    )))
    .bind(customer_pk)
    .bind(plan_id)
    .fetch_optional(conn)
    .await
}

pub async fn get(conn: &mut PgConnection, id: &str) -> Result<Option<Attach>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM attaches WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Moves an attach to `state` from one of `from`; false if it was in none of them.
pub async fn transition(
    conn: &mut PgConnection,
    id: &str,
    from: &[&str],
    state: &str,
    subscription_id: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE attaches SET state = $3,
                stripe_subscription_id = coalesce($4, stripe_subscription_id), updated_at = now()
         WHERE id = $1 AND state = ANY($2)",
    )
    .bind(id)
    .bind(from)
    .bind(state)
    .bind(subscription_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Stores the Checkout Session a pending attach waits on.
pub async fn set_checkout(
    conn: &mut PgConnection,
    id: &str,
    session_id: &str,
    url: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE attaches SET state = 'checkout_required', checkout_session_id = $2,
                checkout_url = $3, updated_at = now()
         WHERE id = $1 AND state = 'pending'",
    )
    .bind(id)
    .bind(session_id)
    .bind(url)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records why an attach could not be carried out (only while it is still pending: one that
/// reached Stripe's checkout or a subscription has an outcome of its own).
pub async fn fail(conn: &mut PgConnection, id: &str, error: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE attaches SET state = 'failed', error = $2, updated_at = now()
         WHERE id = $1 AND state = 'pending'",
    )
    .bind(id)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}
