//! Settling a same-second tie: two events of a subscription from one second said different
//! things (a cancel and an uncancel a moment apart, delivered in reverse), and `created`
//! cannot order them. The subscription is read from Stripe and applied as seen one second
//! after the tie (or now, if later), so it supersedes both; a later event that ties with
//! the read and differs from it queues another read.

use chrono::Utc;
use outbox::{Done, Job, JobError, Lease};

use super::StripeContext;
use crate::appliers::subscription::apply;
use crate::jobs::{RefreshSubscription, ordering};
use crate::store::activity;
use crate::stripe::objects::Subscription;

impl Job for RefreshSubscription {
    const KIND: &'static str = "subscription.refresh";
    type Context = StripeContext;

    /// One read per tie: the same tie seen again (a redelivery) queues nothing more.
    fn key(&self) -> String {
        format!("{}:{}:{}", Self::KIND, self.subscription_id, self.tied_at)
    }

    fn ordering_key(&self) -> Option<String> {
        Some(ordering(self.customer_pk))
    }

    async fn run(&self, stripe: &StripeContext, lease: Lease<'_>) -> Result<Done, JobError> {
        let read = stripe
            .api
            .retrieve_subscription(&self.subscription_id)
            .await?;
        let observed = Utc::now().timestamp().max(self.tied_at + 1);
        let mut tx = lease.pool().begin().await?;
        activity::set_source(&mut tx, "stripe:refresh", None).await?;
        apply(
            &mut tx,
            &stripe.catalog,
            &Subscription::from(&read),
            false,
            observed,
        )
        .await?;
        lease.complete(tx).await
    }
}
