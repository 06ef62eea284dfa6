//! Reading a customer's plans: a subscription's plan and status, the plan it grants now, the
//! held plans (a second attach, the group rule), the products the API shows with their
//! history's times, and the rows `reconcile` compares (re-exported from `plans`).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::access::HELD_SQL;

/// The plan of a subscription's live row, if any (for renewal resets and invoices).
pub async fn subscription_plan(
    conn: &mut PgConnection,
    subscription_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT plan_id FROM stripe_subscriptions WHERE id = $1 AND plan_id IS NOT NULL",
    )
    .bind(subscription_id)
    .fetch_optional(conn)
    .await
}

/// The Stripe status of the newest event applied to a subscription.
pub async fn subscription_status(
    conn: &mut PgConnection,
    subscription_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT status FROM stripe_subscriptions WHERE id = $1 AND status IS NOT NULL",
    )
    .bind(subscription_id)
    .fetch_optional(conn)
    .await
}

/// The plan a subscription grants now (its held row), if any: during a scheduled downgrade,
/// the plan before it.
pub async fn live_plan_of(
    conn: &mut PgConnection,
    subscription_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT plan_id FROM customer_plans
         WHERE stripe_subscription_id = $1 AND status IN {HELD_SQL} ORDER BY id DESC LIMIT 1"
    )))
    .bind(subscription_id)
    .fetch_optional(conn)
    .await
}

/// A plan the customer has (held: live or suspended) or will have (scheduled): a second attach of it creates
/// nothing and answers with this.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HeldPlan {
    pub status: String,
    pub stripe_subscription_id: Option<String>,
    pub cancel_at_period_end: bool,
    pub cancel_at: Option<DateTime<Utc>>,
    pub quantity: i32,
}

impl HeldPlan {
    /// Set to end (at the period's end, or at a date): uncancel can restore it.
    pub fn canceling(&self) -> bool {
        self.cancel_at_period_end || self.cancel_at.is_some()
    }
}

/// The customer's held or scheduled row of `plan_id`, if any (the newest).
pub async fn held(
    conn: &mut PgConnection,
    customer_pk: i64,
    plan_id: &str,
) -> Result<Option<HeldPlan>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT status, stripe_subscription_id, cancel_at_period_end, cancel_at, quantity
         FROM customer_plans
         WHERE customer_pk = $1 AND plan_id = $2 AND (status IN {HELD_SQL} OR status = 'scheduled')
         ORDER BY id DESC LIMIT 1"
    )))
    .bind(customer_pk)
    .bind(plan_id)
    .fetch_optional(conn)
    .await
}

/// The held plan backed by a Stripe subscription in `group`, if any: (plan id, subscription).
pub async fn live_subscription_in_group(
    conn: &mut PgConnection,
    customer_pk: i64,
    group: &str,
) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT plan_id, stripe_subscription_id FROM customer_plans
         WHERE customer_pk = $1 AND plan_group = $2 AND NOT add_on
           AND stripe_subscription_id IS NOT NULL AND status IN {HELD_SQL}
         ORDER BY id DESC LIMIT 1"
    )))
    .bind(customer_pk)
    .bind(group)
    .fetch_optional(conn)
    .await
}

/// A customer's plan as `reconcile` compares it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PlanRow {
    pub plan_id: String,
    pub status: String,
    pub stripe_subscription_id: Option<String>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    pub cancel_at: Option<DateTime<Utc>>,
}

impl std::fmt::Display for PlanRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.plan_id, self.status)?;
        if let Some(end) = self.current_period_end {
            write!(f, " until {}", end.format("%Y-%m-%d"))?;
        }
        if self.cancel_at_period_end {
            f.write_str(" (cancels at period end)")?;
        } else if let Some(at) = self.cancel_at {
            write!(f, " (cancels at {})", at.format("%Y-%m-%d %H:%M"))?;
        }
        Ok(())
    }
}

pub async fn snapshot(
    conn: &mut PgConnection,
    customer_pk: i64,
) -> Result<Vec<PlanRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT plan_id, status, stripe_subscription_id, current_period_end, cancel_at_period_end,
                cancel_at
         FROM customer_plans WHERE customer_pk = $1 ORDER BY plan_id, stripe_subscription_id",
    )
    .bind(customer_pk)
    .fetch_all(conn)
    .await
}

/// A plan of a customer as the API shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Product {
    pub plan_id: String,
    pub status: String,
    pub stripe_subscription_id: Option<String>,
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    pub cancel_at: Option<DateTime<Utc>>,
    pub canceled_at: Option<DateTime<Utc>>,
    pub quantity: i32,
    pub trial_end: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// A customer's plans with their history's times, from Stripe's clock only. A plan that
/// replaced another on its subscription started when an event first showed it, and the one
/// it replaced ended then (its first and last sightings, `plans::observe_stale`); otherwise the
/// stored times: the subscription's `start_date` and `ended_at`, or, for a plan without a
/// subscription, when it last (re)started and when a held plan of its group replaced it.
const PRODUCTS_SQL: &str = "
    SELECT p.plan_id, p.status, p.stripe_subscription_id, p.current_period_end,
           p.cancel_at_period_end, p.cancel_at, p.canceled_at, p.quantity, p.trial_end,
           CASE WHEN h.after_another THEN to_timestamp(p.first_seen) ELSE p.started_at END
               AS started_at,
           CASE WHEN p.status IN ('expired', 'canceled') AND h.next_seen IS NOT NULL
               THEN to_timestamp(h.next_seen) ELSE p.ended_at END AS ended_at
    FROM customer_plans p
    LEFT JOIN LATERAL (
        SELECT bool_or(o.first_seen < p.first_seen) AS after_another,
               min(o.first_seen) FILTER (WHERE o.first_seen > p.last_seen) AS next_seen
        FROM customer_plans o
        WHERE o.stripe_subscription_id = p.stripe_subscription_id AND o.id <> p.id
          AND o.status <> 'scheduled'
    ) h ON true
    WHERE p.customer_pk = $1";

/// The customer's plans that have not ended, by plan.
pub async fn products(
    conn: &mut PgConnection,
    customer_pk: i64,
) -> Result<Vec<Product>, sqlx::Error> {
    let rows: Vec<Product> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{PRODUCTS_SQL} AND p.status NOT IN ('expired', 'canceled') ORDER BY p.plan_id, p.id"
    )))
    .bind(customer_pk)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Product::ends_after_start).collect())
}

/// The customer's plans that ended, the latest end first (then the latest start).
pub async fn ended_products(
    conn: &mut PgConnection,
    customer_pk: i64,
) -> Result<Vec<Product>, sqlx::Error> {
    let rows: Vec<Product> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{PRODUCTS_SQL} AND p.status IN ('expired', 'canceled')
             -- not a downgrade that was dropped before it started (no event ever showed it)
             AND (p.stripe_subscription_id IS NULL OR p.first_seen IS NOT NULL)"
    )))
    .bind(customer_pk)
    .fetch_all(conn)
    .await?;
    let mut ended: Vec<Product> = rows.into_iter().map(Product::ends_after_start).collect();
    ended.sort_by(|a, b| {
        (b.ended_at, b.started_at)
            .cmp(&(a.ended_at, a.started_at))
            .then_with(|| a.plan_id.cmp(&b.plan_id))
            .then_with(|| a.stripe_subscription_id.cmp(&b.stripe_subscription_id))
    });
    Ok(ended)
}

impl Product {
    /// A plan without a subscription starts by our clock (to the microsecond) and ends by
    /// Stripe's (to the second): one replaced within the second it started ends as it starts,
    /// not before.
    fn ends_after_start(self) -> Self {
        let ended_at = self.ended_at.map(|end| end.max(self.started_at));
        Self { ended_at, ..self }
    }
}
