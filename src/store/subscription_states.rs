//! Many subscriptions' states applied together (re-exported from `plans`): what a batch of
//! independent events starts from, read in one statement ([`preflight`]), and the common
//! case (newer than what is stored, nothing else on the subscription to weigh) written with
//! a statement for all of them (`apply_subscription_states`, migration 32) and their
//! balances with one more. Every other state is [`sync_subscription`]'s, one at a time.
//!
//! [`sync_subscription`]: super::subscription_sync::sync_subscription

use std::collections::HashMap;

use sqlx::PgConnection;

use super::balances::{self, HeldPlan};
use super::entities::StoredOwner;
use super::subscription_sync::{HeldArrays, SubscriptionState, changed_at, default_of};
use crate::access;
use crate::catalog::Catalog;

/// A subscription about to be applied, as [`preflight`] looks it up.
#[derive(Debug, Clone, Copy)]
pub struct Probe<'a> {
    pub stripe_customer: &'a str,
    /// Our customer id from its metadata.
    pub our_id: Option<&'a str>,
    pub subscription_id: &'a str,
}

/// What applying a subscription starts from.
#[derive(Debug, Clone)]
pub struct Preflight {
    /// Our customer's pk, and whether it was found by its `stripe_id` (else by our id in the
    /// metadata, and the Stripe id is still to be linked).
    pub customer: Option<(i64, bool)>,
    /// Whom its state was stored for, if any of it is stored.
    pub stored: Option<StoredOwner>,
    /// The `created` of the state the guard holds, if any.
    pub stored_created: Option<i64>,
    /// The subscription has a scheduled downgrade or an attach that follows it.
    pub scheduled_or_attached: bool,
    /// The plans of its rows that have not ended (nor wait to start).
    pub live_plans: Vec<String>,
}

/// [`Preflight`] for each probe, in their order, in one statement (`subscription_preflight`,
/// migration 32).
pub async fn preflight(
    conn: &mut PgConnection,
    probes: &[Probe<'_>],
) -> Result<Vec<Preflight>, sqlx::Error> {
    type Row = (
        Option<i64>,
        Option<bool>,
        Option<i64>,
        Option<String>,
        Option<bool>,
        Option<i64>,
        bool,
        Vec<String>,
    );
    let rows: Vec<Row> = sqlx::query_as("SELECT * FROM subscription_preflight($1, $2, $3)")
        .bind(probes.iter().map(|p| p.stripe_customer).collect::<Vec<_>>())
        .bind(probes.iter().map(|p| p.our_id).collect::<Vec<_>>())
        .bind(probes.iter().map(|p| p.subscription_id).collect::<Vec<_>>())
        .fetch_all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(pk, by_stripe, stored_pk, entity, deleted, created, held, live)| Preflight {
                customer: pk.zip(by_stripe),
                stored: stored_pk.map(|pk| (pk, entity, deleted.unwrap_or(false))),
                stored_created: created,
                scheduled_or_attached: held,
                live_plans: live,
            },
        )
        .collect())
}

impl Preflight {
    /// Whether a state of `plan_id` seen at `created` is the common case that
    /// [`apply_states`] writes: newer than the stored state (no tie to weigh), and nothing
    /// else on the subscription (no scheduled downgrade, no attach, no live row of another
    /// plan: an upgrade's old plan to end).
    pub fn plain(&self, created: i64, plan_id: &str) -> bool {
        !self.scheduled_or_attached
            && self.live_plans.iter().all(|p| p == plan_id)
            && self.stored_created.is_none_or(|stored| stored < created)
    }
}

/// Applies states that are each [`Preflight::plain`], no two kept under one customer, each
/// attributed to its source (an event id) in the timeline; then provisions their customers'
/// balances. Three statements for the lot.
pub async fn apply_states(
    conn: &mut PgConnection,
    catalog: &Catalog,
    states: &[(SubscriptionState<'_>, &str)],
) -> Result<(), sqlx::Error> {
    let defaults: Vec<_> = states
        .iter()
        .map(|(s, _)| default_of(catalog, s.plan))
        .collect();
    let rows: Vec<CustomerHeld> = sqlx::query_as(
        "SELECT customer_pk, held_plan, held_status, held_backed, held_period_end,
                held_started_at, held_quantity
         FROM apply_subscription_states($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
                                        $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)",
    )
    .bind(column(states, |s| s.id))
    .bind(column(states, |s| s.customer_pk))
    .bind(column(states, |s| s.plan.id.as_str()))
    .bind(column(states, |s| s.plan.group.as_deref()))
    .bind(column(states, |s| s.plan.add_on))
    .bind(
        defaults
            .iter()
            .map(|d| d.map(|d| d.id.as_str()))
            .collect::<Vec<_>>(),
    )
    .bind(
        defaults
            .iter()
            .map(|d| d.is_some_and(|d| d.add_on))
            .collect::<Vec<_>>(),
    )
    .bind(column(states, |s| s.stripe_status))
    .bind(column(states, |s| access::our_status(s.stripe_status)))
    .bind(column(states, |s| s.period_start))
    .bind(column(states, |s| s.period_end))
    .bind(column(states, |s| s.cancel_at_period_end))
    .bind(column(states, |s| s.cancel_at))
    .bind(column(states, |s| s.canceled_at))
    .bind(column(states, |s| s.started_at))
    .bind(column(states, |s| s.ended_at))
    .bind(column(states, |s| s.quantity))
    .bind(column(states, |s| s.trial_end))
    .bind(column(states, |s| s.event_created))
    .bind(column(states, changed_at))
    .bind(column(states, |s| access::status_rank(s.stripe_status)))
    .bind(column(states, |s| s.digest()))
    .bind(states.iter().map(|(_, source)| *source).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await?;
    let mut held: HashMap<i64, Vec<HeldPlan>> = rows
        .into_iter()
        .map(|row| (row.customer_pk, row.held.plans()))
        .collect();
    // A customer left holding nothing has no row: their balances go.
    let customers: Vec<(i64, Vec<HeldPlan>)> = states
        .iter()
        .map(|(s, _)| {
            (
                s.customer_pk,
                held.remove(&s.customer_pk).unwrap_or_default(),
            )
        })
        .collect();
    let customers: Vec<(i64, &[HeldPlan])> = customers
        .iter()
        .map(|(pk, h)| (*pk, h.as_slice()))
        .collect();
    balances::provision_many(conn, catalog, &customers).await
}

/// `apply_subscription_states`' answer: a customer's held plans.
#[derive(sqlx::FromRow)]
struct CustomerHeld {
    customer_pk: i64,
    #[sqlx(flatten)]
    held: HeldArrays,
}

/// One column of the states, for binding as an array.
fn column<'a, T>(
    states: &'a [(SubscriptionState<'a>, &'a str)],
    f: impl Fn(&'a SubscriptionState<'a>) -> T,
) -> Vec<T> {
    states.iter().map(|(s, _)| f(s)).collect()
}
