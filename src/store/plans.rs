//! Customer plans: subscriptions synced from Stripe, provisional activation at checkout,
//! one held plan per group, default plans.
//!
//! Ordering rule (any delivery order converges): a Stripe subscription's state is taken only
//! from an event at least as new as the newest one applied to it, compared by Stripe's
//! `created`; within the same second, by status precedence ([`crate::access::status_rank`]), so a
//! same-second cancellation is never undone. A paid checkout completion activates a plan
//! only while no subscription event has been seen for it.
//!
//! Statuses are Stripe's own ([`crate::access::our_status`]); only held ones (live or suspended,
//! [`crate::access::HELD_SQL`]) take their group's place, so an `incomplete` subscription leaves the
//! current plan where it is, and balances follow [`balances::provision`].
//!
//! Applying a subscription's state is `subscription_sync`, reading plans `plan_reads`; both
//! are re-exported here.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::balances;
pub use super::plan_reads::*;
pub use super::subscription_states::{Preflight, Probe, apply_states, preflight};
pub use super::subscription_sync::{
    EventSync, SubscriptionState, Sync, sync_subscription, sync_subscription_event,
};
use crate::access::HELD_SQL;
use crate::catalog::{Catalog, Plan};

/// A completed checkout activates its plan, provisionally: only while no subscription event
/// has been applied for `subscription_id` (those are the authority on its status).
pub async fn activate_from_checkout(
    conn: &mut PgConnection,
    catalog: &Catalog,
    customer_pk: i64,
    plan: &Plan,
    subscription_id: &str,
    at: DateTime<Utc>,
) -> Result<Sync, sqlx::Error> {
    let known: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM stripe_subscriptions WHERE id = $1 AND source_created > 0)",
    )
    .bind(subscription_id)
    .fetch_one(&mut *conn)
    .await?;
    if known {
        return Ok(Sync::Stale);
    }
    let row: Option<i64> = sqlx::query_scalar(
        "INSERT INTO customer_plans (customer_pk, plan_id, plan_group, add_on, status,
                 stripe_subscription_id, started_at)
         VALUES ($1, $2, $3, $4, 'active', $5, $6)
         ON CONFLICT (stripe_subscription_id, plan_id) WHERE stripe_subscription_id IS NOT NULL
         DO NOTHING
         RETURNING id",
    )
    .bind(customer_pk)
    .bind(&plan.id)
    .bind(&plan.group)
    .bind(plan.add_on)
    .bind(subscription_id)
    .bind(at)
    .fetch_optional(&mut *conn)
    .await?;
    if row.is_some() {
        settle_group(conn, catalog, customer_pk, plan, row, at, false).await?;
        balances::provision(conn, catalog, customer_pk).await?;
    }
    Ok(Sync::Applied)
}

/// Activates every default plan for a new customer, from `at`.
pub async fn activate_defaults(
    conn: &mut PgConnection,
    catalog: &Catalog,
    customer_pk: i64,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    for plan in catalog.default_plans() {
        activate_default(conn, plan, customer_pk, at, true).await?;
    }
    balances::provision(conn, catalog, customer_pk).await
}

/// One held plan per group: a plan that just became held (`winner`: live or suspended)
/// replaces the others of its group (add-ons stand apart); an `incomplete` one replaces
/// nothing. When the group is left with no held plan but its default, the default plan
/// (re)starts at `at`, the moment the other plan ended, whichever order the events came in
/// (`restart`: a live default restarts too, see [`activate_default`]). The rules are the SQL
/// function `settle_group` (migration 28), which applying a subscription runs too.
async fn settle_group(
    conn: &mut PgConnection,
    catalog: &Catalog,
    customer_pk: i64,
    plan: &Plan,
    winner: Option<i64>,
    at: DateTime<Utc>,
    restart: bool,
) -> Result<(), sqlx::Error> {
    let Some(group) = plan.group.as_deref().filter(|_| !plan.add_on) else {
        return Ok(());
    };
    let default = catalog.default_plan(group);
    sqlx::query("SELECT settle_group($1, $2, $3, $4, $5, $6, $7)")
        .bind(customer_pk)
        .bind(group)
        .bind(winner)
        .bind(at)
        .bind(default.map(|d| &d.id))
        .bind(default.is_some_and(|d| d.add_on))
        .bind(restart)
        .execute(conn)
        .await?;
    Ok(())
}

/// (Re)activates a plan that needs no Stripe subscription, from `at`. An ended one restarts
/// at `at`, unless it ended after `at`: then it was never replaced as of `at` (a newer event
/// ended it first) and keeps its start. With `restart`, a live one restarts at `at` if that
/// is later: a plan of its group ended then, which in another delivery order replaced it
/// first.
async fn activate_default(
    conn: &mut PgConnection,
    plan: &Plan,
    customer_pk: i64,
    at: DateTime<Utc>,
    restart: bool,
) -> Result<(), sqlx::Error> {
    // The statement is SQL's (`activate_default_plan`, migration 28): `settle_group` runs it.
    sqlx::query("SELECT activate_default_plan($1, $2, $3, $4, $5, $6)")
        .bind(customer_pk)
        .bind(&plan.id)
        .bind(&plan.group)
        .bind(plan.add_on)
        .bind(at)
        .bind(restart)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records a downgrade to `plan` on `subscription_id`, starting at `starts_at` (the end of
/// the current period); the plan stays `scheduled` until then.
pub async fn schedule(
    conn: &mut PgConnection,
    customer_pk: i64,
    plan: &Plan,
    subscription_id: &str,
    starts_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO customer_plans (customer_pk, plan_id, plan_group, add_on, status,
                 stripe_subscription_id, started_at)
         VALUES ($1, $2, $3, $4, 'scheduled', $5, $6)
         ON CONFLICT (stripe_subscription_id, plan_id) WHERE stripe_subscription_id IS NOT NULL
         DO UPDATE SET status = 'scheduled', started_at = EXCLUDED.started_at, updated_at = now()
         WHERE customer_plans.status = 'expired'",
    )
    .bind(customer_pk)
    .bind(&plan.id)
    .bind(&plan.group)
    .bind(plan.add_on)
    .bind(subscription_id)
    .bind(starts_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A downgrade to `plan_id` scheduled on `subscription_id` will not start (uncancel dropped
/// it); false if none was scheduled.
pub async fn unschedule(
    conn: &mut PgConnection,
    subscription_id: &str,
    plan_id: &str,
    at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE customer_plans SET status = 'expired', ended_at = $3, updated_at = now()
         WHERE stripe_subscription_id = $1 AND plan_id = $2 AND status = 'scheduled'",
    )
    .bind(subscription_id)
    .bind(plan_id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends a held plan that has no Stripe subscription (a free or default plan), at `at`: the
/// group's default plan starts, as when a subscription ends, unless the plan ended is that
/// default. False if the customer held no such plan.
pub async fn end_local(
    conn: &mut PgConnection,
    catalog: &Catalog,
    customer_pk: i64,
    plan: &Plan,
    at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let ended = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE customer_plans SET status = 'expired', ended_at = $3, updated_at = now()
         WHERE customer_pk = $1 AND plan_id = $2 AND stripe_subscription_id IS NULL
           AND status IN {HELD_SQL}"
    )))
    .bind(customer_pk)
    .bind(&plan.id)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    if ended.rows_affected() == 0 {
        return Ok(false);
    }
    if !plan.default {
        settle_group(conn, catalog, customer_pk, plan, None, at, true).await?;
    }
    balances::provision(conn, catalog, customer_pk).await?;
    Ok(true)
}

/// Activates a plan that needs no Stripe subscription (a free plan attached by request).
pub async fn activate_local(
    conn: &mut PgConnection,
    catalog: &Catalog,
    customer_pk: i64,
    plan: &Plan,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    activate_default(conn, plan, customer_pk, at, true).await?;
    let row: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM customer_plans
         WHERE customer_pk = $1 AND plan_id = $2 AND stripe_subscription_id IS NULL",
    )
    .bind(customer_pk)
    .bind(&plan.id)
    .fetch_optional(&mut *conn)
    .await?;
    settle_group(conn, catalog, customer_pk, plan, row, at, true).await?;
    balances::provision(conn, catalog, customer_pk).await
}
