//! Pending attaches: a plan a customer asked for, waiting on Stripe (a direct subscription
//! or a Checkout Session completed later by webhook).

use std::sync::LazyLock;

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
    /// `requires_action`: where the customer completes the first payment (the invoice's
    /// hosted page: 3-D Secure, or another payment method after a decline); cleared once
    /// there is nothing left to do.
    pub action_url: Option<String>,
    /// Units of the plan (seats) the subscription is for.
    pub quantity: i32,
    /// Whether an upgrade prorates (credit for the old plan's unused time, charge for the
    /// new one's) or is billed from the next period.
    pub prorate: bool,
    /// The free trial this attach gives, in days (none: the customer or its fingerprint had
    /// the plan's trial, or the plan has none); and its end, once Stripe set it.
    pub trial_days: Option<i32>,
    pub trial_end: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, customer_pk, plan_id, state, checkout_url, success_url, cancel_url, \
                       stripe_subscription_id, action_url, quantity, prorate, trial_days, \
                       trial_end, error, created_at, updated_at";

/// An attach still in flight: at most one per (customer, plan). The predicate of the unique
/// index `attaches_in_flight_key` (migration 8), which `create` must name to conflict on it.
const IN_FLIGHT: &str =
    "state IN ('pending', 'checkout_required', 'awaiting_payment', 'requires_action')";

/// Waiting on the first payment of its subscription.
pub const WAITING: &[&str] = &["awaiting_payment", "requires_action"];

/// A new attach id, `att_` and 32 hex digits.
pub async fn new_id(conn: &mut PgConnection) -> Result<String, sqlx::Error> {
    sqlx::query_scalar("SELECT 'att_' || replace(gen_random_uuid()::text, '-', '')")
        .fetch_one(conn)
        .await
}

/// What a new attach asks for.
#[derive(Debug, Clone)]
pub struct NewAttach<'a> {
    pub customer_pk: i64,
    pub plan_id: &'a str,
    pub success_url: Option<&'a str>,
    pub cancel_url: Option<&'a str>,
    pub quantity: i32,
    pub prorate: bool,
}

/// Records a new pending attach; `None` when one of the same plan for the customer is in
/// flight already (a unique index says so, whatever the concurrency).
pub async fn create(
    conn: &mut PgConnection,
    id: &str,
    new: &NewAttach<'_>,
) -> Result<Option<Attach>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO attaches (id, customer_pk, plan_id, state, success_url, cancel_url,
                               quantity, prorate)
         VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7)
         ON CONFLICT (customer_pk, plan_id) WHERE {IN_FLIGHT} DO NOTHING
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(new.customer_pk)
    .bind(new.plan_id)
    .bind(new.success_url)
    .bind(new.cancel_url)
    .bind(new.quantity)
    .bind(new.prorate)
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

impl super::requests::Table for Attach {
    const TABLE: &'static str = "attaches";
    const COLUMNS: &'static str = COLUMNS;
}

pub async fn get(conn: &mut PgConnection, id: &str) -> Result<Option<Attach>, sqlx::Error> {
    super::requests::get(conn, id).await
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
                stripe_subscription_id = coalesce($4, stripe_subscription_id), updated_at = now(),
                action_url = NULL
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

/// Gives the attach its trial (claimed in [`super::trials`]).
pub async fn set_trial(conn: &mut PgConnection, id: &str, days: i32) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE attaches SET trial_days = $2 WHERE id = $1")
        .bind(id)
        .bind(days)
        .execute(conn)
        .await?;
    Ok(())
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

/// Moves an attach to `state` (`failed`, `expired`) from one of `from`, with the reason.
pub async fn end(
    conn: &mut PgConnection,
    id: &str,
    from: &[&str],
    state: &str,
    error: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE attaches SET state = $3, error = $4, action_url = NULL, updated_at = now()
         WHERE id = $1 AND state = ANY($2)",
    )
    .bind(id)
    .bind(from)
    .bind(state)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The first payment of the attach's subscription needs the customer, at `url`: `reason`
/// (`kind: words`) says why (authentication, or a declined payment to replace). From
/// `pending` (the attach job) or while waiting (a webhook saying so); a reason of the same
/// kind already there is kept (the job's carries Stripe's message, a webhook's does not).
pub async fn require_action(
    conn: &mut PgConnection,
    id: &str,
    subscription_id: &str,
    url: Option<&str>,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE attaches SET state = 'requires_action', stripe_subscription_id = $2,
                action_url = coalesce($3, action_url), updated_at = now(),
                -- A webhook's generic reason does not replace Stripe's own words for it.
                error = CASE WHEN state = 'requires_action'
                                  AND split_part(error, ':', 1) = split_part($4, ':', 1)
                             THEN error ELSE $4 END
         WHERE id = $1 AND state IN ('pending', 'awaiting_payment', 'requires_action')",
    )
    .bind(id)
    .bind(subscription_id)
    .bind(url)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The direct attaches (no Checkout Session: its own events decide a checkout's outcome)
/// waiting on the first payment of `subscription_id`.
pub async fn waiting_on(
    conn: &mut PgConnection,
    subscription_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM attaches
         WHERE stripe_subscription_id = $1 AND state = ANY($2) AND checkout_session_id IS NULL",
    )
    .bind(subscription_id)
    .bind(WAITING)
    .fetch_all(conn)
    .await
}

/// The first payment of `subscription_id` was made: the attaches waiting on it are done
/// (`active`, or `completed` when they went through a Checkout Session).
pub async fn first_payment_made(
    conn: &mut PgConnection,
    subscription_id: &str,
) -> Result<(), sqlx::Error> {
    static PAID: LazyLock<String> = LazyLock::new(|| first_payment_sql("SELECT $1::text"));
    sqlx::query(sqlx::AssertSqlSafe(PAID.as_str()))
        .bind(subscription_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The statement of [`first_payment_made`] for the subscriptions that `subscriptions` (a
/// query of one column) reads: also a part of the statement that records a wave's invoices,
/// for those paid (`store::invoices::record_many`).
pub(super) fn first_payment_sql(subscriptions: &str) -> String {
    let waiting: Vec<String> = WAITING.iter().map(|s| format!("'{s}'")).collect();
    format!(
        "UPDATE attaches
         SET state = CASE WHEN checkout_session_id IS NULL THEN 'active' ELSE 'completed' END,
             error = NULL, action_url = NULL, updated_at = now()
         WHERE stripe_subscription_id IN ({subscriptions})
           AND state = ANY (ARRAY[{}])",
        waiting.join(", ")
    )
}

/// The attaches waiting on the first payment of `subscription_id` follow its newest applied
/// status: paid (any status but `incomplete`) → `active`, or `completed` when they went
/// through a Checkout Session; ended unpaid (`incomplete_expired`, `canceled`) → `expired`.
/// Applying a subscription event does this in its own statement ([`crate::store::plans::sync_subscription`]).
pub async fn follow_subscription(
    conn: &mut PgConnection,
    subscription_id: &str,
) -> Result<(), sqlx::Error> {
    // The statement is SQL's (migration 28): `sync_subscription_state` runs it too.
    sqlx::query("SELECT follow_subscription($1)")
        .bind(subscription_id)
        .execute(conn)
        .await?;
    Ok(())
}
