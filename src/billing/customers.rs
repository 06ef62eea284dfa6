//! Stripe customers: created lazily (or at once with `create_in_stripe`) with our id in their
//! metadata, or linked (`stripe_id`) with our id written into theirs.

use std::collections::HashMap;

use crate::jobs::{CreateCustomer, LinkCustomer};
use outbox::{Done, Job, JobError, Lease};
use sqlx::PgPool;

use super::StripeContext;
use crate::jobs::ordering;
use crate::store::customers;

/// Our customer's Stripe id, creating the Stripe customer if there is none yet. The
/// idempotency key is derived from our customer, so every caller (a retried job, a
/// concurrent attach) gets the same Stripe customer.
pub(super) async fn ensure_stripe_customer(
    stripe: &StripeContext,
    pool: &PgPool,
    customer_pk: i64,
) -> Result<String, JobError> {
    let mut conn = pool.acquire().await?;
    let customer = customers::by_pk(&mut conn, customer_pk)
        .await?
        .ok_or_else(|| JobError::reject(format!("customer {customer_pk} no longer exists")))?;
    if let Some(id) = customer.stripe_id {
        return Ok(id);
    }
    drop(conn);
    let our_id = customer
        .id
        .clone()
        .unwrap_or_else(|| format!("pk:{customer_pk}"));
    let created = stripe
        .api
        .create_customer(
            &format!("rc-customer-{customer_pk}"),
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
        lease.complete_alone().await
    }
}
