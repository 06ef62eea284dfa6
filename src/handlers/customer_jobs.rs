//! Stripe customers: created lazily (or at once with `create_in_stripe`) with our id in their
//! metadata, or linked (`stripe_id`) with our id written into theirs.

use std::collections::HashMap;

use futures::future::BoxFuture;
use sqlx::PgPool;

use super::jobs::{StripeContext, arg};
use crate::engine::{JobError, JobHandler, LeasedJob, queue};
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

pub(super) struct CreateCustomer(pub StripeContext);

impl JobHandler for CreateCustomer {
    fn run<'a>(
        &'a self,
        pool: &'a PgPool,
        job: &'a LeasedJob,
    ) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let pk = customer_pk(job)?;
            ensure_stripe_customer(&self.0, pool, pk).await?;
            Ok(())
        })
    }
}

pub(super) struct LinkCustomer(pub StripeContext);

impl JobHandler for LinkCustomer {
    fn run<'a>(
        &'a self,
        pool: &'a PgPool,
        job: &'a LeasedJob,
    ) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let pk = customer_pk(job)?;
            let stripe_id = arg(&job.args, "stripe_id")?.as_str().unwrap_or_default();
            let mut conn = pool.acquire().await?;
            let Some(customer) = customers::by_pk(&mut conn, pk).await? else {
                return Ok(()); // deleted meanwhile: nothing to link
            };
            drop(conn);
            let our_id = customer.id.unwrap_or_else(|| format!("pk:{pk}"));
            self.0
                .api
                .update_customer_metadata(
                    &format!("rc-link-{pk}-{stripe_id}"),
                    stripe_id,
                    HashMap::from([("customer_id".to_owned(), our_id)]),
                )
                .await?;
            let mut tx = pool.begin().await?;
            if queue::complete(&mut tx, job).await? {
                tx.commit().await?;
            }
            Ok(())
        })
    }
}

fn customer_pk(job: &LeasedJob) -> Result<i64, JobError> {
    arg(&job.args, "customer_pk")?
        .as_i64()
        .ok_or_else(|| JobError::reject("customer_pk is not a number"))
}
