//! Settling a same-second tie: two events of a subscription from one second said different
//! things (a cancel and an uncancel a moment apart, delivered in reverse), and `created`
//! cannot order them. The subscription is read from Stripe and applied as seen in the second
//! the read was taken in, never later: it supersedes the events of earlier seconds; an event
//! of that same second that differs ties with it again and queues another read (a change
//! made later in that second may not be in this read); an event of a later second applies.
//!
//! The read is stamped with the tie's second, Stripe's own clock: it was taken then or
//! later, so the stamp is never later than the read, whatever our clock says (ours may be
//! ahead of Stripe's). Stamping it a second later, as this once did, hid every change of the
//! rest of that second: a plan cancelled right after three quantity changes stayed active
//! for good. A read that ties again with what it applies over (an event of the same second,
//! created after the read, may have been applied first) queues the next read, up to
//! [`MAX_ROUNDS`]; after that the audit settles it.

use outbox::{Done, Job, JobError, Lease};

use super::StripeContext;
use crate::jobs::{RefreshSubscription, ordering};
use crate::store::activity;
use crate::stripe::objects::Subscription;
use crate::sync::subscription::apply_read;

/// Reads of one tie, at most (each queued by the one before, when it tied again).
pub const MAX_ROUNDS: u32 = 5;

impl Job for RefreshSubscription {
    const KIND: &'static str = "subscription.refresh";
    type Context = StripeContext;

    /// One read per tie, round and tying state: the same tie seen again (a redelivery)
    /// queues nothing more; a state of the same second that differs gets a read of its own,
    /// even while an earlier read (perhaps taken before that change) runs.
    fn key(&self) -> String {
        let mut key = format!("{}:{}:{}", Self::KIND, self.subscription_id, self.tied_at);
        if self.round > 0 {
            key += &format!(":{}", self.round);
        }
        if let Some(cause) = &self.cause {
            key += &format!(":{cause}");
        }
        key
    }

    fn ordering_key(&self) -> Option<String> {
        Some(ordering(self.customer_pk))
    }

    async fn run(&self, stripe: &StripeContext, lease: Lease<'_>) -> Result<Done, JobError> {
        let read = stripe
            .api
            .retrieve_subscription(&self.subscription_id)
            .await?;
        let mut tx = lease.pool().begin().await?;
        activity::set_source(&mut tx, "stripe:refresh", None).await?;
        let next_round = (self.round < MAX_ROUNDS).then_some(self.round + 1);
        apply_read(
            &mut tx,
            &stripe.catalog,
            &Subscription::from(&read),
            self.tied_at,
            next_round,
        )
        .await?;
        lease.complete(tx).await
    }
}
