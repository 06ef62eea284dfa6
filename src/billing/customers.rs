//! Stripe customers: created lazily (or at once with `create_in_stripe`) with our id in their
//! metadata, or linked (`stripe_id`) with our id written into theirs; a linked Stripe
//! customer's subscriptions imported (its skipped events are queued again where the link is
//! written); our name and email pushed to it, and read back when a change of Stripe's ties
//! with ours.

use std::collections::HashMap;

use chrono::Utc;
use outbox::{Done, Job, JobError, Lease};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use super::StripeContext;
use crate::jobs::{
    CreateCustomer, ImportCustomer, LinkCustomer, RefreshCustomer, SyncCustomer, ordering,
};
use crate::store::{customers, entities};
use crate::stripe::objects::Subscription;
use crate::sync::subscription::apply;

/// Our customer's Stripe id, creating the Stripe customer if there is none yet. The
/// idempotency key is derived from our customer (and how many times it was unlinked from a
/// deleted Stripe customer), so every caller (a retried job, a concurrent attach) gets the
/// same Stripe customer, and a customer whose Stripe customer was deleted gets a new one.
pub(super) async fn ensure_stripe_customer(
    stripe: &StripeContext,
    pool: &PgPool,
    customer_pk: i64,
) -> Result<String, JobError> {
    let mut conn = pool.acquire().await?;
    // What an entity holds is billed to its customer's Stripe customer.
    let customer_pk = entities::payer(&mut conn, customer_pk).await?;
    let customer = customers::by_pk(&mut conn, customer_pk)
        .await?
        .ok_or_else(|| JobError::reject(format!("customer {customer_pk} no longer exists")))?;
    if let Some(id) = customer.stripe_id {
        return Ok(id);
    }
    let our_id = customer
        .id
        .clone()
        .unwrap_or_else(|| format!("pk:{customer_pk}"));
    let generation = customers::stripe_generation(&mut conn, customer_pk).await?;
    drop(conn);
    let key = match generation {
        0 => format!("rc-customer-{customer_pk}"),
        n => format!("rc-customer-{customer_pk}-g{n}"),
    };
    let created = stripe
        .api
        .create_customer(
            &key,
            customer.name.as_deref(),
            customer.email.as_deref(),
            HashMap::from([("customer_id".to_owned(), our_id)]),
        )
        .await?;
    let mut conn = pool.acquire().await?;
    if customers::link_stripe(&mut conn, customer_pk, &created.id).await? {
        return Ok(created.id);
    }
    // Linked to another Stripe customer meanwhile (a `stripe_id` link): that one wins.
    let customer = customers::by_pk(&mut conn, customer_pk).await?;
    customer.and_then(|c| c.stripe_id).ok_or_else(|| {
        JobError::retryable(anyhow::anyhow!(
            "customer {customer_pk} could not be linked"
        ))
    })
}

impl Job for CreateCustomer {
    const KIND: &'static str = "stripe.create_customer";
    type Context = StripeContext;

    fn key(&self) -> String {
        format!("{}:{}", Self::KIND, self.customer_pk)
    }

    fn ordering_key(&self) -> Option<String> {
        Some(ordering(self.customer_pk))
    }

    async fn run(&self, stripe: &StripeContext, lease: Lease<'_>) -> Result<Done, JobError> {
        ensure_stripe_customer(stripe, lease.pool(), self.customer_pk).await?;
        lease.complete_alone().await
    }
}

impl Job for LinkCustomer {
    const KIND: &'static str = "stripe.link_customer";
    type Context = StripeContext;

    fn key(&self) -> String {
        format!("{}:{}:{}", Self::KIND, self.customer_pk, self.stripe_id)
    }

    fn ordering_key(&self) -> Option<String> {
        Some(ordering(self.customer_pk))
    }

    async fn run(&self, stripe: &StripeContext, lease: Lease<'_>) -> Result<Done, JobError> {
        let pk = self.customer_pk;
        let mut conn = lease.pool().acquire().await?;
        let Some(customer) = customers::by_pk(&mut conn, pk).await? else {
            drop(conn);
            return lease.complete_alone().await; // deleted meanwhile: nothing to link
        };
        drop(conn);
        let our_id = customer.id.unwrap_or_else(|| format!("pk:{pk}"));
        stripe
            .api
            .update_customer_metadata(
                &format!("rc-link-{pk}-{}", self.stripe_id),
                &self.stripe_id,
                HashMap::from([("customer_id".to_owned(), our_id)]),
            )
            .await?;
        import(stripe, lease, pk, &self.stripe_id).await
    }
}

impl Job for ImportCustomer {
    const KIND: &'static str = "stripe.import_customer";
    type Context = StripeContext;

    fn key(&self) -> String {
        format!("{}:{}:{}", Self::KIND, self.customer_pk, self.stripe_id)
    }

    fn ordering_key(&self) -> Option<String> {
        Some(ordering(self.customer_pk))
    }

    async fn run(&self, stripe: &StripeContext, lease: Lease<'_>) -> Result<Done, JobError> {
        import(stripe, lease, self.customer_pk, &self.stripe_id).await
    }
}

/// Brings in what a linked Stripe customer has: its subscriptions, applied through the path
/// `reconcile` takes (observed now), then its stored events that were skipped for want of
/// the link, queued again in order. One transaction, completed with the job.
async fn import(
    stripe: &StripeContext,
    lease: Lease<'_>,
    customer_pk: i64,
    stripe_id: &str,
) -> Result<Done, JobError> {
    let observed = Utc::now().timestamp();
    let subscriptions = stripe.api.list_subscriptions(stripe_id).await?;
    let mut tx = lease.pool().begin().await?;
    let linked = customers::by_pk(&mut tx, customer_pk).await?;
    if linked.and_then(|c| c.stripe_id).as_deref() != Some(stripe_id) {
        return lease.complete(tx).await; // unlinked or relinked meanwhile: not ours to import
    }
    for sub in subscriptions.iter().map(Subscription::from) {
        apply(&mut tx, &stripe.catalog, &sub, false, observed).await?;
    }
    // The events skipped for want of the link were queued again where it was written
    // (`customers::link_stripe`).
    tracing::info!(
        customer_pk,
        stripe_id,
        subscriptions = subscriptions.len(),
        "linked Stripe customer imported"
    );
    lease.complete(tx).await
}

impl Job for SyncCustomer {
    const KIND: &'static str = "stripe.sync_customer";
    type Context = StripeContext;

    /// One push per change: its content and when it was made (a name changed back is
    /// pushed again).
    fn key(&self) -> String {
        let digest = Sha256::digest(format!("{:?}\n{:?}", self.name, self.email));
        let content = hex::encode(&digest[..8]);
        format!(
            "{}:{}:{content}:{}",
            Self::KIND,
            self.customer_pk,
            self.change
        )
    }

    fn ordering_key(&self) -> Option<String> {
        Some(ordering(self.customer_pk))
    }

    /// Pushes this change (jobs of a customer run in order, so the latest change lands
    /// last), under a key of the change: a retry replays the same request, and Stripe's
    /// `customer.updated` echo carries the key and is not copied back.
    async fn run(&self, stripe: &StripeContext, lease: Lease<'_>) -> Result<Done, JobError> {
        let Some(stripe_id) = linked_stripe_id(lease.pool(), self.customer_pk).await? else {
            return lease.complete_alone().await; // deleted or unlinked: nothing to push
        };
        let key = format!("rc-{}", self.key().replace(':', "-"));
        stripe
            .api
            .update_customer_contact(
                &key,
                &stripe_id,
                self.name.as_deref(),
                self.email.as_deref(),
            )
            .await?;
        lease.complete_alone().await
    }
}

impl Job for RefreshCustomer {
    const KIND: &'static str = "customer.refresh";
    type Context = StripeContext;

    /// One read per tying state.
    fn key(&self) -> String {
        let cause = self.cause.as_deref().unwrap_or("");
        format!(
            "{}:{}:{}:{cause}",
            Self::KIND,
            self.customer_pk,
            self.tied_at
        )
    }

    /// Behind the customer's pending push of our change.
    fn ordering_key(&self) -> Option<String> {
        Some(ordering(self.customer_pk))
    }

    async fn run(&self, stripe: &StripeContext, lease: Lease<'_>) -> Result<Done, JobError> {
        let Some(stripe_id) = linked_stripe_id(lease.pool(), self.customer_pk).await? else {
            return lease.complete_alone().await; // deleted or unlinked: nothing to read
        };
        let read = stripe.api.retrieve_customer(&stripe_id).await?;
        let mut tx = lease.pool().begin().await?;
        customers::sync_from_stripe(
            &mut tx,
            self.customer_pk,
            read.name.as_deref(),
            read.email.as_deref(),
            self.tied_at,
            true,
            false,
        )
        .await?;
        lease.complete(tx).await
    }
}

/// The Stripe id our customer is linked to now, if it still exists and is linked.
async fn linked_stripe_id(pool: &PgPool, customer_pk: i64) -> Result<Option<String>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    Ok(customers::by_pk(&mut conn, customer_pk)
        .await?
        .and_then(|c| c.stripe_id))
}
