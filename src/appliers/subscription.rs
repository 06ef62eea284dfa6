//! `customer.subscription.*`: the subscription synced into the store ([`sync::subscription`]:
//! status, period, cancellation; deletion expires the plan and lets the group's default plan
//! take over; an attach waiting on the first payment follows the subscription); and
//! `trial_will_end`'s timeline entry.
//!
//! [`sync::subscription`]: crate::sync::subscription

use std::sync::Arc;

use sqlx::PgConnection;

use super::TOGETHER_FROM;
use crate::catalog::Catalog;
use crate::store::{activity, plans};
use crate::stripe::event::object;
use crate::stripe::objects::{Subscription, timestamp};
use crate::sync::customer::resolve_customer;
use crate::sync::prices::PricePlans;
use crate::sync::subscription::{Carried, apply_event, apply_events_together};
use outbox::{EventHandler, JobError, Outcome, StoredEvent};

pub(super) const EVENT_TYPES: &[&str] = &[
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
    "customer.subscription.trial_will_end",
];

#[derive(Clone)]
pub(super) struct SubscriptionHandler {
    pub catalog: Arc<Catalog>,
    /// Whether a same-second tie is settled by reading Stripe (only when Stripe is
    /// configured: the job calls it).
    pub refresh_ties: bool,
    /// The plans of the prices seen before (shared with the invoice handler).
    pub prices: Arc<PricePlans>,
}

impl EventHandler for SubscriptionHandler {
    const TOGETHER_FROM: usize = TOGETHER_FROM;

    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<Outcome, JobError> {
        let sub: Subscription = object(event)?;
        // A deleted subscription is over, whatever else the payload says.
        let ended = event.event_type == "customer.subscription.deleted";
        let source = (event.id.as_str(), event.created);
        let outcome = apply_event(
            conn,
            &self.catalog,
            &self.prices,
            &sub,
            ended,
            source,
            self.refresh_ties,
        )
        .await?;
        if event.event_type == "customer.subscription.trial_will_end" {
            trial_will_end(conn, &sub).await?;
        }
        Ok(outcome)
    }

    /// The common case together (see [`apply_events_together`]), the rest one by one (a
    /// group smaller than [`TOGETHER_FROM`] gets no call: the worker applies it one by one).
    async fn handle_many(
        &self,
        conn: &mut PgConnection,
        events: &[&StoredEvent],
    ) -> Result<Vec<Result<Outcome, JobError>>, JobError> {
        // Payloads that do not parse, and trial notices (an entry of their own), go alone.
        let parsed: Vec<Option<Subscription>> = events
            .iter()
            .map(|e| {
                let notice = e.event_type == "customer.subscription.trial_will_end";
                (!notice).then(|| object(e).ok()).flatten()
            })
            .collect();
        let carried: Vec<Option<Carried<'_>>> = parsed
            .iter()
            .zip(events)
            .map(|(sub, event)| {
                Some(Carried {
                    sub: sub.as_ref()?,
                    ended: event.event_type == "customer.subscription.deleted",
                    event: (event.id.as_str(), event.created),
                })
            })
            .collect();
        let settled = apply_events_together(conn, &self.catalog, &self.prices, &carried).await?;
        outbox::registry::handle_rest(self, conn, events, settled).await
    }
}

/// Stripe's notice, three days ahead, that a trial ends: a timeline entry (once per event).
async fn trial_will_end(conn: &mut PgConnection, sub: &Subscription) -> Result<(), JobError> {
    let customer = resolve_customer(conn, Some(sub.customer.id()), Some(&sub.metadata)).await?;
    let Some(customer_pk) = customer else {
        return Ok(());
    };
    let plan = plans::subscription_plan(conn, &sub.id).await?;
    let detail = serde_json::json!({
        "plan_id": plan, "subscription_id": sub.id,
        "trial_end": sub.trial_end.and_then(timestamp),
    });
    activity::record(conn, customer_pk, "plan.trial_will_end", detail).await?;
    Ok(())
}
