//! In-arrear usage on renewal: `invoice.created` for a `subscription_cycle` draft enqueues a
//! job that adds one invoice item per usage-priced feature for the period that ended: units
//! over `included` × `per_unit`. Each item's idempotency key is built from the invoice and the
//! feature, and `invoice_usage_items` records it, so a redelivered event or a retried job
//! never bills twice.

use std::collections::HashMap;

use crate::jobs::BillUsage;
use chrono::DateTime;
use outbox::{Done, Job, JobError, Lease};

use super::StripeContext;
use crate::jobs::ordering;
use crate::store::entities::{self, SubscriptionOwner};
use crate::store::{customers, plans, stripe_ids};

impl Job for BillUsage {
    const KIND: &'static str = "invoice.bill_usage";
    type Context = StripeContext;

    fn key(&self) -> String {
        format!("{}:{}", Self::KIND, self.invoice_id)
    }

    fn ordering_key(&self) -> Option<String> {
        Some(ordering(self.customer_pk))
    }

    async fn run(&self, stripe: &StripeContext, lease: Lease<'_>) -> Result<Done, JobError> {
        let (invoice, subscription, currency) =
            (&self.invoice_id, &self.subscription_id, &self.currency);
        let customer_pk = self.customer_pk;
        let period = |secs| {
            DateTime::from_timestamp(secs, 0)
                .ok_or_else(|| JobError::reject(format!("period bound {secs} is out of range")))
        };
        let (start, end) = (period(self.period_start)?, period(self.period_end)?);
        let mut conn = lease.pool().acquire().await?;
        let Some(customer) = customers::by_pk(&mut conn, customer_pk).await? else {
            drop(conn);
            return lease.complete_alone().await;
        };
        let stripe_customer = customer
            .stripe_id
            .ok_or_else(|| JobError::reject("the customer has no Stripe id"))?;
        let plan_id = plans::subscription_plan(&mut conn, subscription).await?;
        let Some(plan) = plan_id.and_then(|id| stripe.catalog.plan(&id)) else {
            drop(conn);
            return lease.complete_alone().await; // no plan of ours on it: nothing to bill
        };
        // An entity's subscription bills the entity's usage (to its customer's Stripe
        // customer), also the part of the period before the entity was deleted.
        let owner = entities::subscription_owner(&mut conn, customer_pk, subscription, None);
        let usage_pk = match owner.await? {
            SubscriptionOwner::Pk(pk) | SubscriptionOwner::Deleted { holder_pk: pk, .. } => pk,
            SubscriptionOwner::Unknown(_) => customer_pk,
        };
        for item in &plan.items {
            let Some(usage) = &item.usage_price else {
                continue;
            };
            if stripe_ids::usage_billed(&mut conn, invoice, &item.feature).await? {
                continue;
            }
            let used =
                stripe_ids::usage_between(&mut conn, usage_pk, &item.feature, start, end).await?;
            let over = (used - item.included.unwrap_or(0)).max(0);
            let amount = over.saturating_mul(usage.per_unit);
            let stripe_item = if over > 0 {
                let metadata = HashMap::from([
                    (
                        "customer_id".to_owned(),
                        customer.id.clone().unwrap_or_default(),
                    ),
                    ("plan_id".to_owned(), plan.id.clone()),
                    ("feature_id".to_owned(), item.feature.clone()),
                ]);
                let description = format!(
                    "{} - {}: {over} over the {} included",
                    plan.name,
                    item.feature,
                    item.included.unwrap_or(0)
                );
                Some(
                    stripe
                        .api
                        .create_invoice_item(
                            &format!("rc-usage-{invoice}-{}", item.feature),
                            &stripe_customer,
                            invoice,
                            amount,
                            currency,
                            &description,
                            metadata,
                        )
                        .await?,
                )
            } else {
                None
            };
            stripe_ids::record_usage_billed(
                &mut conn,
                invoice,
                &item.feature,
                customer_pk,
                over,
                amount,
                stripe_item.as_deref(),
            )
            .await?;
        }
        drop(conn);
        lease.complete_alone().await
    }
}
