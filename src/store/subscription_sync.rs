//! A Stripe subscription's state applied to the customer's plans (re-exported from `plans`):
//! the version guard and ties, then `sync_subscription_state` (migration 28) in one call; a
//! stale event still tells its history; a downgrade waiting for its period keeps the plan the
//! subscription grants until then.

use chrono::{DateTime, Utc};
use sha2::Digest;
use sqlx::PgConnection;
use sqlx::types::Json;

use super::balances;
use super::entities::SubscriptionRefs;
use super::plan_reads::{live_plan_of, subscription_plan};
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
    let row: SyncRow = bind_guard(bind_state(query, catalog, s), s, defer_ties)
        .fetch_one(&mut *conn)
        .await?;
    settle(conn, catalog, s, row, None).await
}

/// What [`sync_subscription_event`] did.
#[derive(Debug)]
pub enum EventSync {
    /// The common case: the state was applied for `owner_pk` (the customer `customer_pk`
    /// itself, or whom the subscription's state was stored for).
    Synced {
        customer_pk: i64,
        owner_pk: i64,
        sync: Sync,
    },
    /// Nothing was applied: what the state starts from, for the path that links the
    /// customer, finds the entity or says why the event is skipped.
    Refs(SubscriptionRefs),
}

/// A subscription's state as an event (`source`: its id and `created`) or a read of ours
/// carried it, applied with what it starts from in one round trip when that is the common
/// case (`sync_subscription_event`, migration 34): the transaction's changes are attributed
/// to `source`, our customer is found for `stripe_customer` (else `our_id`), and the state is
/// applied as [`sync_subscription`] applies it, for the owner [`entities::owner_of`] would
/// name, when naming it takes no statement of its own (the customer found by its
/// `stripe_id`; the owner stored, or none stored and no `entity_id`). `s.customer_pk` is not
/// read: the owner found is.
///
/// [`entities::owner_of`]: super::entities::owner_of
#[allow(clippy::too_many_arguments)]
pub async fn sync_subscription_event(
    conn: &mut PgConnection,
    catalog: &Catalog,
    source: Option<(&str, i64)>,
    stripe_customer: &str,
    our_id: Option<&str>,
    entity_id: Option<&str>,
    s: &SubscriptionState<'_>,
    defer_ties: bool,
) -> Result<EventSync, sqlx::Error> {
    let query = sqlx::query_as(
        "SELECT * FROM sync_subscription_event($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
                 $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26,
                 $27, $28)",
    );
    let query = query
        .bind(source.map(|(id, _)| id))
        .bind(source.map(|(_, at)| at))
        .bind(stripe_customer)
        .bind(our_id)
        .bind(entity_id)
        .bind(s.id);
    let row: EventRow = bind_guard(bind_after_owner(query, catalog, s), s, defer_ties)
        .fetch_one(&mut *conn)
        .await?;
    let (Some(customer_pk), Some(owner_pk)) = (row.customer_pk, row.owner_pk) else {
        return Ok(EventSync::Refs(SubscriptionRefs {
            customer: row.customer_pk.zip(row.by_stripe),
            stored: row.stored_pk.map(|pk| {
                (
                    pk,
                    row.stored_entity_id,
                    row.stored_deleted.unwrap_or(false),
                )
            }),
        }));
    };
    let s = &SubscriptionState {
        customer_pk: owner_pk,
        ..s.clone()
    };
    let current = row.balances.map(|Json(rows)| rows);
    let sync = settle(conn, catalog, s, row.sync, current).await?;
    Ok(EventSync::Synced {
        customer_pk,
        owner_pk,
        sync,
    })
}

/// `sync_subscription_event`'s answer: the refs, and `sync_subscription_state`'s answer
/// when it was applied (with no owner, the verdict 'refs': nothing was).
#[derive(sqlx::FromRow)]
struct EventRow {
    customer_pk: Option<i64>,
    by_stripe: Option<bool>,
    stored_pk: Option<i64>,
    stored_entity_id: Option<String>,
    stored_deleted: Option<bool>,
    owner_pk: Option<i64>,
    #[sqlx(flatten)]
    sync: SyncRow,
    /// The owner's balance rows when the state was applied (else `NULL`).
    balances: Option<Json<Vec<balances::ProvisionedRow>>>,
}

/// What the guard's verdict leaves to do: a stale state tells its history, a downgrade
/// scheduled for the period end applies the plan the subscription still grants, and the
/// balances follow the held plans (unless they grant what the `balances` read after them
/// hold already).
async fn settle(
    conn: &mut PgConnection,
    catalog: &Catalog,
    s: &SubscriptionState<'_>,
    row: SyncRow,
    balances: Option<Vec<balances::ProvisionedRow>>,
) -> Result<Sync, sqlx::Error> {
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
            let held = row.held.plans();
            match balances {
                Some(current) => {
                    balances::provision_unless_same(conn, catalog, s.customer_pk, &held, &current)
                        .await?;
                }
                None => balances::provision_from(conn, catalog, s.customer_pk, &held).await?,
            }
            Ok(applied)
        }
    }
}

/// The default plan that takes a plan's group back when the group is left without one.
pub(super) fn default_of<'c>(catalog: &'c Catalog, plan: &Plan) -> Option<&'c Plan> {
    plan.group
        .as_deref()
        .filter(|_| !plan.add_on)
        .and_then(|group| catalog.default_plan(group))
}

/// `sync_subscription_state`'s answer (and `sync_subscription_event`'s, with the verdict
/// 'refs' when nothing was applied).
#[derive(sqlx::FromRow)]
struct SyncRow {
    verdict: String,
    tied: bool,
    #[sqlx(flatten)]
    held: HeldArrays,
}

/// A customer's held plans as the functions of migrations 28 and 32 answer them (column
/// arrays, in [`balances::provision`]'s order); `NULL`s when nothing was applied or nothing
/// is held.
#[derive(sqlx::FromRow)]
pub(super) struct HeldArrays {
    held_plan: Option<Vec<String>>,
    held_status: Option<Vec<String>>,
    held_backed: Option<Vec<bool>>,
    held_period_end: Option<Vec<Option<DateTime<Utc>>>>,
    held_started_at: Option<Vec<DateTime<Utc>>>,
    held_quantity: Option<Vec<i32>>,
}

impl HeldArrays {
    pub(super) fn plans(&self) -> Vec<balances::HeldPlan> {
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

/// Binds what the guard weighs a state by, after the state (`sync_subscription_state`'s last
/// four parameters): its status precedence, its digest, whether a tie waits for a read, and
/// whether it is a read.
fn bind_guard<'q, O>(
    query: StateQuery<'q, O>,
    s: &SubscriptionState<'_>,
    defer_ties: bool,
) -> StateQuery<'q, O> {
    query
        .bind(access::status_rank(s.stripe_status))
        .bind(s.digest())
        .bind(defer_ties)
        .bind(s.read)
}

type StateQuery<'q, O> = sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>;

/// Binds a state as the functions of migration 28 take it first (`$1`..`$20`).
fn bind_state<'q, O>(
    query: StateQuery<'q, O>,
    catalog: &'q Catalog,
    s: &'q SubscriptionState<'_>,
) -> StateQuery<'q, O> {
    bind_after_owner(query.bind(s.id).bind(s.customer_pk), catalog, s)
}

/// Binds what follows the subscription and its owner in those parameters (its plan ...
/// when it changed: 18 of them).
fn bind_after_owner<'q, O>(
    query: StateQuery<'q, O>,
    catalog: &'q Catalog,
    s: &'q SubscriptionState<'_>,
) -> StateQuery<'q, O> {
    let default = default_of(catalog, s.plan);
    query
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

/// When a subscription's state changed, by Stripe's clock: its end, else the event's time.
pub(super) fn changed_at(s: &SubscriptionState<'_>) -> DateTime<Utc> {
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
    if access::is_held(access::our_status(s.stripe_status))
        && let Some(group) = s.plan.group.as_deref().filter(|_| !s.plan.add_on)
    {
        end_local_by(conn, s.customer_pk, group, changed_at(s), None).await?;
    }
    Ok(())
}
