//! Customer plans: subscriptions synced from Stripe, provisional activation at checkout,
//! one held plan per group, default plans.
//!
//! Ordering rule (any delivery order converges): a Stripe subscription's state is taken only
//! from an event at least as new as the newest one applied to it, compared by Stripe's
//! `created`; within the same second, by status precedence ([`access::status_rank`]), so a
//! same-second cancellation is never undone. A paid checkout completion activates a plan
//! only while no subscription event has been seen for it.
//!
//! Statuses are Stripe's own ([`access::our_status`]); only held ones (live or suspended,
//! [`access::HELD_SQL`]) take their group's place, so an `incomplete` subscription leaves the
//! current plan where it is, and balances follow [`balances::provision`].

use chrono::{DateTime, Utc};
use sha2::Digest;
use sqlx::PgConnection;

use super::balances;
use crate::access::{self, HELD_SQL};
use crate::catalog::{Catalog, Plan};

/// A subscription as one event shows it.
#[derive(Debug, Clone)]
pub struct SubscriptionState<'a> {
    pub id: &'a str,
    pub customer_pk: i64,
    pub plan: &'a Plan,
    pub stripe_status: &'a str,
    pub period_start: Option<DateTime<Utc>>,
    pub period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
    /// The date it is set to cancel at (Stripe's `cancel_at`).
    pub cancel_at: Option<DateTime<Utc>>,
    pub canceled_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub quantity: i32,
    /// The end of its free trial, if it has one.
    pub trial_end: Option<DateTime<Utc>>,
    /// The event's `created`: the ordering guard.
    pub event_created: i64,
    /// A read of Stripe (stamped with the second it was taken in), not an event: it ties
    /// with any state of its second, whatever their status precedence.
    pub read: bool,
}

/// Whether an event changed state or was older than what we have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    Applied,
    /// Applied over a state from the same second, with the same status precedence and other
    /// content (a read of ours replacing an event's): the subscription should be read from
    /// Stripe to settle which is newer.
    AppliedOverTie,
    /// Not applied, for the same reason (an event tying with what is there): the
    /// subscription should be read from Stripe.
    Tied,
    Stale,
}

impl SubscriptionState<'_> {
    /// What a same-second event must match not to be a tie: the fields we keep.
    /// What we keep of the state, hashed: two states of one second that differ in it tie.
    pub(crate) fn digest(&self) -> String {
        let state = format!(
            "{}|{}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{}|{:?}",
            self.plan.id,
            self.stripe_status,
            self.cancel_at_period_end,
            self.cancel_at,
            self.canceled_at,
            self.period_start,
            self.period_end,
            self.ended_at,
            self.quantity,
            self.trial_end
        );
        hex::encode(&sha2::Sha256::digest(state.as_bytes())[..12])
    }
}

/// Applies a subscription's state, unless a newer event for it was applied already.
///
/// A state that ties in its second with the newest applied one (same status precedence) and
/// says something else is, with `defer_ties` (an event), not applied ([`Sync::Tied`]); without
/// (a read of ours, made after whatever happened before it), applied
/// ([`Sync::AppliedOverTie`]). Either way the caller reads the subscription from Stripe.
///
/// Whatever the verdict, a trial's end is set on its attach and an attach waiting on the
/// first payment follows the subscription's newest status.
pub async fn sync_subscription(
    conn: &mut PgConnection,
    catalog: &Catalog,
    s: &SubscriptionState<'_>,
    defer_ties: bool,
) -> Result<Sync, sqlx::Error> {
    // One round trip (migration 28): the guard, then the state applied to the plans, the
    // group settled, and the held plans read back for the balances.
    let query = sqlx::query_as(
        "SELECT * FROM sync_subscription_state($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
                 $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)",
    );
    let row: SyncRow = bind_state(query, catalog, s)
        .bind(access::status_rank(s.stripe_status))
        .bind(s.digest())
        .bind(defer_ties)
        .bind(s.read)
        .fetch_one(&mut *conn)
        .await?;
    let applied = if row.tied {
        Sync::AppliedOverTie
    } else {
        Sync::Applied
    };
    match row.verdict.as_str() {
        "tied" => Ok(Sync::Tied),
        "stale" => {
            observe_stale(conn, s).await?;
            Ok(Sync::Stale)
        }
        // This state's plan is a downgrade scheduled for the period end, and its period has
        // not started: until then the subscription (already billing the new price) still
        // grants the plan it had.
        "scheduled" => {
            let plan = live_plan_of(conn, s.id)
                .await?
                .and_then(|id| catalog.plan(&id))
                .unwrap_or(s.plan);
            let s = &SubscriptionState { plan, ..s.clone() };
            let held = apply_state(conn, catalog, s).await?;
            balances::provision_from(conn, catalog, s.customer_pk, &held.plans()).await?;
            Ok(applied)
        }
        _ => {
            balances::provision_from(conn, catalog, s.customer_pk, &row.held.plans()).await?;
            Ok(applied)
        }
    }
}

/// The default plan that takes a plan's group back when the group is left without one.
fn default_of<'c>(catalog: &'c Catalog, plan: &Plan) -> Option<&'c Plan> {
    plan.group
        .as_deref()
        .filter(|_| !plan.add_on)
        .and_then(|group| catalog.default_plan(group))
}

/// `sync_subscription_state`'s answer.
#[derive(sqlx::FromRow)]
struct SyncRow {
    verdict: String,
    tied: bool,
    #[sqlx(flatten)]
    held: HeldArrays,
}

/// A customer's held plans as the functions of migration 28 answer them (column arrays, in
/// [`balances::provision`]'s order); `NULL`s when nothing was applied or nothing is held.
#[derive(sqlx::FromRow)]
struct HeldArrays {
    held_plan: Option<Vec<String>>,
    held_status: Option<Vec<String>>,
    held_backed: Option<Vec<bool>>,
    held_period_end: Option<Vec<Option<DateTime<Utc>>>>,
    held_started_at: Option<Vec<DateTime<Utc>>>,
    held_quantity: Option<Vec<i32>>,
}

impl HeldArrays {
    fn plans(&self) -> Vec<balances::HeldPlan> {
        let n = self.held_plan.as_ref().map_or(0, Vec::len);
        (0..n)
            .map(|i| balances::HeldPlan {
                plan_id: self.held_plan.as_ref().expect("n > 0")[i].clone(),
                status: self.held_status.as_ref().expect("one per plan")[i].clone(),
                backed: self.held_backed.as_ref().expect("one per plan")[i],
                period_end: self.held_period_end.as_ref().expect("one per plan")[i],
                started_at: self.held_started_at.as_ref().expect("one per plan")[i],
                quantity: self.held_quantity.as_ref().expect("one per plan")[i],
            })
            .collect()
    }
}

/// A state the guard let through, applied to the plans (`apply_subscription_state`,
/// migration 28): for the scheduled-downgrade path, with the plan the subscription still
/// grants.
async fn apply_state(
    conn: &mut PgConnection,
    catalog: &Catalog,
    s: &SubscriptionState<'_>,
) -> Result<HeldArrays, sqlx::Error> {
    let query = sqlx::query_as(
        "SELECT * FROM apply_subscription_state($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
                 $12, $13, $14, $15, $16, $17, $18, $19, $20)",
    );
    bind_state(query, catalog, s).fetch_one(conn).await
}

/// Binds a state as the functions of migration 28 take it first (`$1`..`$20`).
fn bind_state<'q, O>(
    query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    catalog: &'q Catalog,
    s: &'q SubscriptionState<'_>,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    let default = default_of(catalog, s.plan);
    query
        .bind(s.id)
        .bind(s.customer_pk)
        .bind(&s.plan.id)
        .bind(&s.plan.group)
        .bind(s.plan.add_on)
        .bind(default.map(|d| &d.id))
        .bind(default.is_some_and(|d| d.add_on))
        .bind(s.stripe_status)
        .bind(access::our_status(s.stripe_status))
        .bind(s.period_start)
        .bind(s.period_end)
        .bind(s.cancel_at_period_end)
        .bind(s.cancel_at)
        .bind(s.canceled_at)
        .bind(s.started_at)
        .bind(s.ended_at)
        .bind(s.quantity)
        .bind(s.trial_end)
        .bind(s.event_created)
        .bind(changed_at(s))
}

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

/// Another plan of `group` was seen held at `at` (`winner`, if it is held now; else the
/// caller knows it was): a plan of the group without a subscription that ended later than
/// that (a newer event was applied first) had ended by `at`. Its end is the earliest such
/// moment since it started, whichever order the events came in.
async fn end_local_by(
    conn: &mut PgConnection,
    customer_pk: i64,
    group: &str,
    at: DateTime<Utc>,
    winner: Option<i64>,
) -> Result<(), sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE customer_plans SET ended_at = $3, updated_at = now()
         WHERE customer_pk = $1 AND plan_group = $2 AND NOT add_on
           AND stripe_subscription_id IS NULL AND status = 'expired'
           AND ended_at > $3 AND started_at <= $3
           AND ($4::bigint IS NULL OR EXISTS (
               SELECT 1 FROM customer_plans w WHERE w.id = $4 AND w.status IN {HELD_SQL}))"
    )))
    .bind(customer_pk)
    .bind(group)
    .bind(at)
    .bind(winner)
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

/// Whether our `status` holds its plan: one of [`HELD_SQL`]'s.
fn is_held(status: &str) -> bool {
    HELD_SQL.contains(&format!("'{status}'"))
}

/// When a subscription's state changed, by Stripe's clock: its end, else the event's time.
fn changed_at(s: &SubscriptionState<'_>) -> DateTime<Utc> {
    s.ended_at
        .or_else(|| DateTime::from_timestamp(s.event_created, 0))
        .unwrap_or_else(Utc::now)
}

/// An event older than the newest applied to its subscription changes none of its state,
/// but still tells its history: the plan it shows was on the subscription then (a row for
/// it, ended, when an upgrade's newer event came first; its details from the newest such
/// event), and a held plan then means the group's plan without a subscription had ended by
/// then ([`end_local_by`]).
async fn observe_stale(
    conn: &mut PgConnection,
    s: &SubscriptionState<'_>,
) -> Result<(), sqlx::Error> {
    let current = subscription_plan(conn, s.id).await?;
    let row: Option<(i64, String, Option<i64>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT id, status, last_seen, started_at FROM customer_plans
         WHERE stripe_subscription_id = $1 AND plan_id = $2",
    )
    .bind(s.id)
    .bind(&s.plan.id)
    .fetch_optional(&mut *conn)
    .await?;
    let is_current = current.as_deref() == Some(s.plan.id.as_str());
    match row {
        // A downgrade not started yet, or an event from before the period it started in
        // (it was scheduled then): the event shows its price early.
        Some((_, status, _, _)) if status == "scheduled" => return Ok(()),
        Some((_, _, _, started)) if s.period_start.is_some_and(|p| p < started) => {
            return Ok(());
        }
        Some((id, status, last_seen, _)) => {
            let newest_of_plan =
                status == "expired" && !is_current && last_seen.is_none_or(|l| l < s.event_created);
            sqlx::query(
                "UPDATE customer_plans
                 SET first_seen = least(first_seen, $2), last_seen = greatest(last_seen, $2),
                     current_period_start = CASE WHEN $3 THEN $4 ELSE current_period_start END,
                     current_period_end = CASE WHEN $3 THEN $5 ELSE current_period_end END,
                     cancel_at_period_end = CASE WHEN $3 THEN $6 ELSE cancel_at_period_end END,
                     canceled_at = CASE WHEN $3 THEN $7 ELSE canceled_at END,
                     quantity = CASE WHEN $3 THEN $8 ELSE quantity END,
                     cancel_at = CASE WHEN $3 THEN $9 ELSE cancel_at END,
                     updated_at = now()
                 WHERE id = $1",
            )
            .bind(id)
            .bind(s.event_created)
            .bind(newest_of_plan)
            .bind(s.period_start)
            .bind(s.period_end)
            .bind(s.cancel_at_period_end)
            .bind(s.canceled_at)
            .bind(s.quantity)
            .bind(s.cancel_at)
            .execute(&mut *conn)
            .await?;
        }
        None if !is_current => {
            sqlx::query(
                "INSERT INTO customer_plans (customer_pk, plan_id, plan_group, add_on, status,
                         stripe_subscription_id, current_period_start, current_period_end,
                         cancel_at_period_end, canceled_at, started_at, ended_at, quantity,
                         cancel_at, first_seen, last_seen)
                 VALUES ($1, $2, $3, $4, 'expired', $5, $6, $7, $8, $9,
                         coalesce($10, to_timestamp($13)),
                         (SELECT to_timestamp(min(o.first_seen)) FROM customer_plans o
                          WHERE o.stripe_subscription_id = $5 AND o.first_seen > $13),
                         $11, $12, $13, $13)",
            )
            .bind(s.customer_pk)
            .bind(&s.plan.id)
            .bind(&s.plan.group)
            .bind(s.plan.add_on)
            .bind(s.id)
            .bind(s.period_start)
            .bind(s.period_end)
            .bind(s.cancel_at_period_end)
            .bind(s.canceled_at)
            .bind(s.started_at)
            .bind(s.quantity)
            .bind(s.cancel_at)
            .bind(s.event_created)
            .execute(&mut *conn)
            .await?;
        }
        None => {}
    }
    if is_held(access::our_status(s.stripe_status))
        && let Some(group) = s.plan.group.as_deref().filter(|_| !s.plan.add_on)
    {
        end_local_by(conn, s.customer_pk, group, changed_at(s), None).await?;
    }
    Ok(())
}

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
/// it replaced ended then (its first and last sightings, [`observe_stale`]); otherwise the
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
