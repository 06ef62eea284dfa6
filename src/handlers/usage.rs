//! In-arrear usage on renewal: `invoice.created` for a `subscription_cycle` draft enqueues a
//! job that adds one invoice item per usage-priced feature for the period that ended: units
//! over `included` × `per_unit`. Each item's idempotency key is built from the invoice and the
//! feature, and `invoice_usage_items` records it, so a redelivered event or a retried job
//! never bills twice.

use std::collections::HashMap;

use chrono::DateTime;
use futures::future::BoxFuture;
use serde_json::json;
use sqlx::{PgConnection, PgPool};

use super::jobs::{self, StripeContext, arg};
use super::objects::Invoice;
use crate::engine::{JobError, JobHandler, LeasedJob, queue};
use crate::store::{customers, plans, stripe_ids};

/// Called by the invoice handler, in its transaction.
pub(super) async fn enqueue_for(
    conn: &mut PgConnection,
    customer_pk: i64,
    invoice: &Invoice,
) -> Result<(), sqlx::Error> {
    let (Some(subscription), Some(start), Some(end)) = (
        invoice.subscription_id(),
        invoice.period_start,
        invoice.period_end,
    ) else {
        return Ok(());
    };
    let args = json!({
        "invoice_id": invoice.id, "customer_pk": customer_pk, "subscription_id": subscription,
        "period_start": start, "period_end": end, "currency": invoice.currency,
    });
    jobs::enqueue_bill_usage(conn, customer_pk, &args, &invoice.id).await?;
    Ok(())
}

pub(super) struct BillUsage(pub StripeContext);

impl JobHandler for BillUsage {
    fn run<'a>(
        &'a self,
        pool: &'a PgPool,
        job: &'a LeasedJob,
    ) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let text =
                |name| arg(&job.args, name).map(|v| v.as_str().unwrap_or_default().to_owned());
            let number = |name| arg(&job.args, name).map(|v| v.as_i64().unwrap_or_default());
            let (invoice, subscription, currency) = (
                text("invoice_id")?,
                text("subscription_id")?,
                text("currency")?,
            );
            let customer_pk = number("customer_pk")?;
            let start = DateTime::from_timestamp(number("period_start")?, 0).unwrap_or_default();
            let end = DateTime::from_timestamp(number("period_end")?, 0).unwrap_or_default();

            let mut conn = pool.acquire().await?;
            let Some(customer) = customers::by_pk(&mut conn, customer_pk).await? else {
                return Ok(());
            };
            let stripe_customer = customer
                .stripe_id
                .ok_or_else(|| JobError::reject("the customer has no Stripe id"))?;
            let plan_id = plans::subscription_plan(&mut conn, &subscription).await?;
            let Some(plan) = plan_id.and_then(|id| self.0.catalog.plan(&id)) else {
                return Ok(()); // no plan of ours on this subscription: nothing to bill
            };
            for item in &plan.items {
                let Some(usage) = &item.usage_price else {
                    continue;
                };
                if stripe_ids::usage_billed(&mut conn, &invoice, &item.feature).await? {
                    continue;
                }
                let used =
                    stripe_ids::usage_between(&mut conn, customer_pk, &item.feature, start, end)
                        .await?;
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
                        self.0
                            .api
                            .create_invoice_item(
                                &format!("rc-usage-{invoice}-{}", item.feature),
                                &stripe_customer,
                                &invoice,
                                amount,
                                &currency,
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
                    &invoice,
                    &item.feature,
                    customer_pk,
                    over,
                    amount,
                    stripe_item.as_deref(),
                )
                .await?;
            }
            drop(conn);
            let mut tx = pool.begin().await?;
            if queue::complete(&mut tx, job).await? {
                tx.commit().await?;
            }
            Ok(())
        })
    }
}
