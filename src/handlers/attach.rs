//! Executing an attach: ensure the Stripe customer and the plan's prices, then
//! - within a group that already has a paid plan: an upgrade swaps the subscription's price
//!   with proration at once; a downgrade swaps it without proration (billed from the next
//!   period) and the plan is `scheduled` until that period starts;
//! - a customer with a default payment method: a subscription, provisioned at once;
//! - otherwise: a Checkout Session, completed later by `checkout.session.completed`.
//!
//! Every Stripe call's idempotency key is derived from the attach id, so a retried job
//! creates nothing twice.

use std::collections::HashMap;

use chrono::Utc;
use futures::future::BoxFuture;
use sqlx::PgPool;

use super::catalog_sync::ensure_plan_objects;
use super::customer_jobs::ensure_stripe_customer;
use super::jobs::{StripeContext, arg};
use super::objects::Subscription;
use super::subscription::apply;
use crate::catalog::Plan;
use crate::engine::{JobError, JobHandler, LeasedJob, queue};
use crate::store::{attaches, plans};

pub(super) struct ExecuteAttach(pub StripeContext);

impl JobHandler for ExecuteAttach {
    fn run<'a>(
        &'a self,
        pool: &'a PgPool,
        job: &'a LeasedJob,
    ) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let attach_id = arg(&job.args, "attach_id")?.as_str().unwrap_or_default();
            let mut conn = pool.acquire().await?;
            let Some(attach) = attaches::get(&mut conn, attach_id).await? else {
                return Ok(()); // the customer was deleted with its attaches
            };
            drop(conn);
            if attach.state != "pending" {
                return Ok(()); // carried out already
            }
            let stripe = &self.0;
            let Some(plan) = stripe.catalog.plan(&attach.plan_id) else {
                let mut conn = pool.acquire().await?;
                attaches::fail(
                    &mut conn,
                    &attach.id,
                    "the plan is no longer in the catalog",
                )
                .await?;
                return Ok(());
            };
            let key = |step: &str| format!("rc-attach-{}-{step}", attach.id);
            let metadata = HashMap::from([
                (
                    "customer_id".to_owned(),
                    customer_id(pool, attach.customer_pk).await?,
                ),
                ("plan_id".to_owned(), plan.id.clone()),
                ("attach_id".to_owned(), attach.id.clone()),
            ]);

            if plan.price.is_none() {
                // A free plan needs nothing from Stripe.
                let mut tx = pool.begin().await?;
                plans::activate_local(
                    &mut tx,
                    &stripe.catalog,
                    attach.customer_pk,
                    plan,
                    Utc::now(),
                )
                .await?;
                attaches::transition(&mut tx, &attach.id, &["pending"], "active", None).await?;
                return finish(tx, job).await;
            }
            let stripe_customer = ensure_stripe_customer(stripe, pool, attach.customer_pk).await?;
            let objects = ensure_plan_objects(stripe, pool, plan).await?;
            let price = objects.price.ok_or_else(|| {
                JobError::retryable(anyhow::anyhow!("plan {} has no Stripe price yet", plan.id))
            })?;

            if let Some((current, subscription_id)) =
                current_in_group(pool, attach.customer_pk, plan).await?
            {
                let subscription = stripe.api.retrieve_subscription(&subscription_id).await?;
                let upgrade = amount(stripe, &plan.id) >= amount(stripe, &current);
                let updated = stripe
                    .api
                    .swap_price(&key("swap"), &subscription, &price, upgrade, metadata)
                    .await?;
                let view = Subscription::from(&updated);
                let mut tx = pool.begin().await?;
                if upgrade {
                    apply(
                        &mut tx,
                        &stripe.catalog,
                        &view,
                        false,
                        Utc::now().timestamp(),
                    )
                    .await?;
                    attaches::transition(
                        &mut tx,
                        &attach.id,
                        &["pending"],
                        "active",
                        Some(&view.id),
                    )
                    .await?;
                } else {
                    let starts_at = view.period().1.unwrap_or_else(Utc::now);
                    plans::schedule(&mut tx, attach.customer_pk, plan, &view.id, starts_at).await?;
                    attaches::transition(
                        &mut tx,
                        &attach.id,
                        &["pending"],
                        "scheduled",
                        Some(&view.id),
                    )
                    .await?;
                }
                return finish(tx, job).await;
            }

            let customer = stripe.api.retrieve_customer(&stripe_customer).await?;
            if customer.has_default_payment_method {
                let created = stripe
                    .api
                    .create_subscription(&key("subscription"), &stripe_customer, &price, metadata)
                    .await?;
                let view = Subscription::from(&created);
                let mut tx = pool.begin().await?;
                let state = if matches!(view.status.as_str(), "active" | "trialing") {
                    apply(
                        &mut tx,
                        &stripe.catalog,
                        &view,
                        false,
                        Utc::now().timestamp(),
                    )
                    .await?;
                    "active"
                } else {
                    "awaiting_payment" // completed by invoice.paid
                };
                attaches::transition(&mut tx, &attach.id, &["pending"], state, Some(&view.id))
                    .await?;
                return finish(tx, job).await;
            }

            let success = attach
                .success_url
                .as_deref()
                .unwrap_or("https://example.invalid/success");
            let cancel = attach
                .cancel_url
                .as_deref()
                .unwrap_or("https://example.invalid/cancel");
            let subscription_metadata = HashMap::from([
                ("customer_id".to_owned(), metadata["customer_id"].clone()),
                ("plan_id".to_owned(), plan.id.clone()),
            ]);
            let (session, url) = stripe
                .api
                .create_checkout_session(
                    &key("checkout"),
                    &stripe_customer,
                    &price,
                    success,
                    cancel,
                    metadata,
                    subscription_metadata,
                )
                .await?;
            let mut tx = pool.begin().await?;
            attaches::set_checkout(&mut tx, &attach.id, &session, url.as_deref()).await?;
            finish(tx, job).await
        })
    }
}

/// Completes the job with the effects in `tx`; a lost lease rolls them back.
async fn finish(
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    job: &LeasedJob,
) -> Result<(), JobError> {
    if queue::complete(&mut tx, job).await? {
        tx.commit().await?;
        Ok(())
    } else {
        Err(JobError::retryable(anyhow::anyhow!(
            "lease lost; another worker took the job"
        )))
    }
}

async fn customer_id(pool: &PgPool, pk: i64) -> Result<String, JobError> {
    let mut conn = pool.acquire().await?;
    let customer = crate::store::customers::by_pk(&mut conn, pk)
        .await?
        .ok_or_else(|| JobError::reject(format!("customer {pk} no longer exists")))?;
    Ok(customer.id.unwrap_or_else(|| format!("pk:{pk}")))
}

/// The paid plan (and its subscription) this attach would replace, if any.
async fn current_in_group(
    pool: &PgPool,
    customer_pk: i64,
    plan: &Plan,
) -> Result<Option<(String, String)>, JobError> {
    let Some(group) = plan.group.as_deref().filter(|_| !plan.add_on) else {
        return Ok(None);
    };
    let mut conn = pool.acquire().await?;
    let current = plans::live_subscription_in_group(&mut conn, customer_pk, group).await?;
    Ok(current.filter(|(current, _)| *current != plan.id))
}

fn amount(stripe: &StripeContext, plan_id: &str) -> i64 {
    stripe
        .catalog
        .plan(plan_id)
        .and_then(|p| p.price.as_ref())
        .map_or(0, |p| p.amount)
}
