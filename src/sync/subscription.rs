//! A subscription as Stripe has it → our plan's state for it: status, period, cancellation,
//! quantity, trial; deletion expires the plan and lets the group's default plan take over;
//! an attach waiting on the first payment follows the subscription (paid → done, ended
//! unpaid → expired). One path for an event's object and for a read of ours (attaches, plan
//! changes, `reconcile`, the audit, tie reads); they differ only in what a same-second tie
//! with the newest applied state does ([`Ties`]).

use std::collections::HashSet;

use sqlx::PgConnection;

use super::customer::{link_found, unknown_customer};
use super::prices::PricePlans;
use crate::catalog::{Catalog, Plan};
use crate::jobs::RefreshSubscription;
use crate::metrics;
use crate::store::customers;
use crate::store::entities::{self, SubscriptionOwner};
use crate::store::plans::{self, EventSync, Probe, SubscriptionState, Sync};
use crate::stripe::objects::{Subscription, timestamp};
use outbox::{JobError, Outcome};

/// The catalog plan a subscription is for: by its items' stored prices (or legacy plans),
/// else by `metadata.plan_id` on it or its prices.
pub(crate) async fn plan_of<'c>(
    conn: &mut PgConnection,
    catalog: &'c Catalog,
    sub: &Subscription,
) -> Result<Option<&'c Plan>, sqlx::Error> {
    plan_with(conn, catalog, &PricePlans::default(), sub).await
}

/// [`plan_of`], the prices' plans looked up in `prices` first.
async fn plan_with<'c>(
    conn: &mut PgConnection,
    catalog: &'c Catalog,
    prices: &PricePlans,
    sub: &Subscription,
) -> Result<Option<&'c Plan>, sqlx::Error> {
    let items: Vec<_> = sub.items.data.iter().filter_map(|i| i.price()).collect();
    let price_ids: Vec<&str> = items.iter().map(|p| p.id.as_str()).collect();
    let mut metadata = vec![Some(&sub.metadata)];
    metadata.extend(items.iter().map(|p| Some(&p.metadata)));
    prices
        .resolve_many(conn, catalog, &price_ids, &metadata)
        .await
}

/// Applies a subscription as read from the API at `observed`: the same path as webhooks, for
/// attaches, plan changes, `reconcile` and tie reads. A read is applied also when it ties in
/// its second with an event's state (it was made after whatever that event told), and the
/// tie queues a read of the subscription from Stripe all the same.
pub(crate) async fn apply(
    conn: &mut PgConnection,
    catalog: &Catalog,
    sub: &Subscription,
    ended: bool,
    observed: i64,
) -> Result<Outcome, JobError> {
    let seen = Seen {
        at: observed,
        ties: Ties::Apply(Some(0)),
        source: None,
    };
    apply_with(conn, catalog, &PricePlans::default(), sub, ended, seen).await
}

/// [`apply`] for a read that settles a tie (`subscription.refresh`): a tie again queues the
/// read of `next_round`, none when there is no next round.
pub(crate) async fn apply_read(
    conn: &mut PgConnection,
    catalog: &Catalog,
    sub: &Subscription,
    observed: i64,
    next_round: Option<u32>,
) -> Result<Outcome, JobError> {
    let seen = Seen {
        at: observed,
        ties: Ties::Apply(next_round),
        source: None,
    };
    apply_with(conn, catalog, &PricePlans::default(), sub, false, seen).await
}

/// Applies a subscription as an event carried it (`event`: its id and `created`, which the
/// timeline's changes are attributed to). `refresh_ties`: a same-second tie is settled by
/// reading Stripe (only when Stripe is configured: the job calls it); else the
/// later-arriving state holds.
pub(crate) async fn apply_event(
    conn: &mut PgConnection,
    catalog: &Catalog,
    prices: &PricePlans,
    sub: &Subscription,
    ended: bool,
    event: (&str, i64),
    refresh_ties: bool,
) -> Result<Outcome, JobError> {
    let ties = if refresh_ties {
        Ties::Defer
    } else {
        Ties::Ignore
    };
    let seen = Seen {
        at: event.1,
        ties,
        source: Some(event),
    };
    apply_with(conn, catalog, prices, sub, ended, seen).await
}

/// What a state that ties in its second with the newest applied one does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ties {
    /// A read of ours: applied, and the subscription read again (`subscription.refresh`,
    /// this round; none after the last round).
    Apply(Option<u32>),
    /// An event, with Stripe configured: not applied; the subscription is read.
    Defer,
    /// An event without Stripe: applied (the later-arriving holds).
    Ignore,
}

/// How a state was seen: when (`at`), what a tie with it does, and what the changes are
/// attributed to in the timeline (an event: its id and `created`; else whatever the
/// transaction named).
struct Seen<'e> {
    at: i64,
    ties: Ties,
    source: Option<(&'e str, i64)>,
}

/// [`apply`] for a state as `seen`.
async fn apply_with(
    conn: &mut PgConnection,
    catalog: &Catalog,
    prices: &PricePlans,
    sub: &Subscription,
    ended: bool,
    seen: Seen<'_>,
) -> Result<Outcome, JobError> {
    let Seen {
        at: observed,
        ties,
        source,
    } = seen;
    // An item we cannot read at all makes the event dead, naming it (never a guess).
    sub.prices()
        .map_err(|e| JobError::Unreadable(anyhow::anyhow!(e)))?;
    let stripe_customer = sub.customer.id();
    let our_id = sub.metadata.get("customer_id").map(String::as_str);
    // An entity's subscription (`metadata.entity_id`) is kept under the entity's holder.
    let entity = sub.metadata.get("entity_id").map(String::as_str);
    let read = matches!(ties, Ties::Apply(_));
    let defer = ties == Ties::Defer;
    // With the plan known (the prices' plans are remembered), the common case is one round
    // trip: the source named, the customer and the owner found, the state applied.
    let plan = plan_with(conn, catalog, prices, sub).await?;
    let refs = match plan {
        Some(plan) => {
            // The owner is the call's to find; the state's is not read.
            let state = state_of(sub, ended, 0, plan, observed, read);
            match plans::sync_subscription_event(
                conn,
                catalog,
                source,
                stripe_customer,
                our_id,
                entity,
                &state,
                defer,
            )
            .await?
            {
                EventSync::Synced {
                    customer_pk,
                    owner_pk,
                    sync,
                } => {
                    let state = SubscriptionState {
                        customer_pk: owner_pk,
                        ..state
                    };
                    return after_sync(conn, sub, customer_pk, &state, sync, ties).await;
                }
                EventSync::Refs(refs) => refs,
            }
        }
        // One statement: the customer, whom the subscription's state was stored for, the
        // source.
        None => entities::subscription_refs(conn, source, stripe_customer, our_id, &sub.id).await?,
    };
    let Some(customer_pk) = link_found(conn, refs.customer, Some(stripe_customer)).await? else {
        return Ok(Outcome::Skipped(unknown_customer(Some(stripe_customer))));
    };
    let owner = entities::owner_of(conn, customer_pk, refs.stored, entity).await?;
    let owner_pk = match owner {
        SubscriptionOwner::Pk(pk) => pk,
        SubscriptionOwner::Deleted { entity_id, .. } => {
            return Ok(Outcome::Skipped(format!(
                "subscription {} is entity {entity_id}'s, which was deleted",
                sub.id
            )));
        }
        SubscriptionOwner::Unknown(entity) => {
            return Ok(Outcome::Skipped(format!(
                "subscription {} names entity {entity}, which the customer does not have",
                sub.id
            )));
        }
    };
    let Some(plan) = plan else {
        return Ok(Outcome::Skipped(format!(
            "subscription {} maps to no plan in the catalog",
            sub.id
        )));
    };
    let state = state_of(sub, ended, owner_pk, plan, observed, read);
    // Also, whichever event came last, an attach waiting on the first payment follows the
    // subscription's newest status.
    let sync = plans::sync_subscription(conn, catalog, &state, defer).await?;
    after_sync(conn, sub, customer_pk, &state, sync, ties).await
}

/// What a state's verdict comes to: a tie queues a read of the subscription from Stripe
/// (for `customer_pk`), and the outcome says why a state was not applied.
async fn after_sync(
    conn: &mut PgConnection,
    sub: &Subscription,
    customer_pk: i64,
    state: &SubscriptionState<'_>,
    sync: Sync,
    ties: Ties,
) -> Result<Outcome, JobError> {
    let observed = state.event_created;
    let tied = matches!(sync, Sync::Tied | Sync::AppliedOverTie);
    let round = match ties {
        Ties::Apply(round) => round,
        Ties::Defer => Some(0),
        Ties::Ignore => None,
    };
    if tied && let Some(round) = round {
        let job = RefreshSubscription {
            subscription_id: sub.id.clone(),
            customer_pk,
            tied_at: observed,
            round,
            cause: (ties == Ties::Defer).then(|| state.digest()),
        };
        outbox::enqueue(conn, &job).await?;
    }
    Ok(match sync {
        Sync::Applied | Sync::AppliedOverTie => Outcome::Applied,
        Sync::Tied => Outcome::Skipped(format!(
            "tied: another state of {} from the same second was applied; reading it from Stripe",
            sub.id
        )),
        Sync::Stale => Outcome::Skipped(format!(
            "stale: a newer event for {} was applied already",
            sub.id
        )),
    })
}

/// The state `sub` shows for `owner_pk`'s `plan`, seen at `observed` (`read`: by a read of
/// ours, not an event).
fn state_of<'a>(
    sub: &'a Subscription,
    ended: bool,
    owner_pk: i64,
    plan: &'a Plan,
    observed: i64,
    read: bool,
) -> SubscriptionState<'a> {
    let status = if ended {
        "canceled"
    } else {
        sub.status.as_str()
    };
    let (period_start, period_end) = sub.period();
    SubscriptionState {
        id: &sub.id,
        customer_pk: owner_pk,
        plan,
        stripe_status: status,
        period_start,
        period_end,
        cancel_at_period_end: sub.cancel_at_period_end,
        cancel_at: sub.cancel_at.and_then(timestamp),
        canceled_at: sub.canceled_at.and_then(timestamp),
        started_at: sub.start_date.and_then(timestamp),
        ended_at: sub.ended_at.and_then(timestamp),
        quantity: sub.quantity(),
        trial_end: sub.trial_end.and_then(timestamp),
        event_created: observed,
        read,
    }
}

/// A subscription as an event carried it, for [`apply_events_together`].
#[derive(Clone, Copy)]
pub(crate) struct Carried<'a> {
    pub sub: &'a Subscription,
    /// The event said the subscription was deleted.
    pub ended: bool,
    /// The event's id and `created`.
    pub event: (&'a str, i64),
}

/// Applies subscriptions that independent events carried (no two of one Stripe customer;
/// `None`: an event to apply alone): those that are the common case together
/// ([`plans::apply_states`]: newer than what is stored, nothing else on the subscription, no
/// two kept under one customer), and those of customers we do not know skipped. Answers the
/// outcome of each it settled, in their order; the others (`None`) are for [`apply_event`],
/// one at a time: the same rules either way, the common case in a statement for all.
pub(crate) async fn apply_events_together(
    conn: &mut PgConnection,
    catalog: &Catalog,
    prices: &PricePlans,
    carried: &[Option<Carried<'_>>],
) -> Result<Vec<Option<Outcome>>, JobError> {
    let mut outcomes = vec![None; carried.len()];
    // An item we cannot read at all is `apply_event`'s to refuse.
    let readable: Vec<(usize, &Carried<'_>)> = carried
        .iter()
        .enumerate()
        .filter_map(|(n, c)| {
            c.as_ref()
                .filter(|c| c.sub.prices().is_ok())
                .map(|c| (n, c))
        })
        .collect();
    let probes: Vec<Probe<'_>> = readable
        .iter()
        .map(|(_, c)| Probe {
            stripe_customer: c.sub.customer.id(),
            our_id: c.sub.metadata.get("customer_id").map(String::as_str),
            subscription_id: &c.sub.id,
        })
        .collect();
    let found = plans::preflight(conn, &probes).await?;
    let mut owners = HashSet::new();
    let mut states = Vec::new();
    let mut links = Vec::new();
    for ((n, c), pre) in readable.into_iter().zip(found) {
        let Some((customer_pk, by_stripe)) = pre.customer else {
            outcomes[n] = Some(Outcome::Skipped(unknown_customer(Some(
                c.sub.customer.id(),
            ))));
            continue;
        };
        // Kept under the customer, or under whom it was stored for (an entity's holder).
        let owner_pk = match (&pre.stored, c.sub.metadata.get("entity_id")) {
            (Some((pk, _, false)), _) => *pk,
            (None, None) => customer_pk,
            _ => continue,
        };
        let Some(plan) = plan_with(conn, catalog, prices, c.sub).await? else {
            continue;
        };
        if !pre.plain(c.event.1, &plan.id) || !owners.insert(owner_pk) {
            continue;
        }
        if !by_stripe && links.iter().all(|(pk, _)| *pk != customer_pk) {
            // Found by our id in its metadata: the Stripe id is linked first (the first one
            // named, as one at a time), all of the wave's in one statement.
            links.push((customer_pk, c.sub.customer.id()));
        }
        outcomes[n] = Some(Outcome::Applied);
        states.push((
            state_of(c.sub, c.ended, owner_pk, plan, c.event.1, false),
            c.event.0,
        ));
    }
    if !links.is_empty() {
        customers::link_stripe_many(conn, &links).await?;
    }
    if !states.is_empty() {
        plans::apply_states(conn, catalog, &states).await?;
        // Counted when the call returns; a batch that rolls back counts again when retried.
        metrics::applied_together("subscription", states.len());
    }
    Ok(outcomes)
}
