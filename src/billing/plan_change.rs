//! Carrying out a plan change an operator asked for (`POST /v1/cancel`, `/v1/uncancel`,
//! `/v1/quantity`, and the CLI's `customers cancel|uncancel|quantity`):
//! - cancel at the period's end sets `cancel_at_period_end`; cancel now deletes the
//!   subscription (the group's default plan takes over, as on its webhook); a plan without a
//!   subscription (free or default) ends here, at once;
//! - uncancel clears the cancellation, or drops a downgrade scheduled for the period's end
//!   (the subscription's price goes back to the current plan's, without proration);
//! - quantity sets the subscription item's quantity, prorated or not.
//!
//! The job reads the subscription from Stripe first, so a change already made (by an earlier
//! try, a double click or someone in Stripe's dashboard) is `unchanged` and calls nothing.
//! Stripe's answer is recorded through the webhooks' own path ([`apply`]) in the transaction
//! that marks the change done; the webhooks Stripe sends about it then change nothing, in
//! whatever order they come. Idempotency keys are `rc-change-{id}-{step}`.

use chrono::Utc;
use outbox::JobError;
use sqlx::{PgPool, Postgres, Transaction};

use super::catalog_sync::ensure_plan_objects;
use super::{Carried, StripeContext};
use crate::catalog::Plan;
use crate::store::activity;
use crate::store::plan_changes::PlanChange;
use crate::store::plans::{self, HeldPlan};
use crate::stripe::objects::Subscription;
use crate::sync::subscription::apply;

/// Carries out a pending change: reads the subscription from Stripe, changes it if it is not
/// that way already, and applies Stripe's answer; what it did, uncommitted, or why it cannot
/// be done.
pub(crate) async fn carry_out(
    stripe: &StripeContext,
    pool: &PgPool,
    change: &PlanChange,
) -> Result<Carried<Done>, JobError> {
    let mut conn = pool.acquire().await?;
    let held = plans::held(&mut conn, change.customer_pk, &change.plan_id).await?;
    drop(conn);
    let run = Run {
        stripe,
        pool,
        change,
    };
    match (stripe.catalog.plan(&change.plan_id), held) {
        (None, _) => Ok(Err("the plan is no longer in the catalog".to_owned())),
        (Some(plan), None) => Ok(Err(format!("the customer no longer has plan {}", plan.id))),
        (Some(plan), Some(held)) => run.carry_out(plan, &held).await,
    }
}

/// What a done change did (`canceled`, `ended`, ...), and to which subscription.
type Done = (&'static str, Option<String>);

/// One change being carried out.
struct Run<'a> {
    stripe: &'a StripeContext,
    pool: &'a PgPool,
    change: &'a PlanChange,
}

impl Run<'_> {
    async fn carry_out(&self, plan: &Plan, held: &HeldPlan) -> Result<Carried<Done>, JobError> {
        let Some(subscription) = held.stripe_subscription_id.as_deref() else {
            return self.local(plan).await;
        };
        let observed = Utc::now().timestamp();
        let api = &self.stripe.api;
        let current = api.retrieve_subscription(subscription).await?;
        let view = Subscription::from(&current);
        if !view.bills() {
            let mut tx = self.begin().await?;
            apply(&mut tx, &self.stripe.catalog, &view, false, observed).await?;
            return Ok(self.done(tx, "unchanged", &view));
        }
        let change = self.change;
        let key = |step: &str| format!("rc-change-{}-{step}", change.id);
        let (what, updated) = match (change.kind.as_str(), change.cancel_at.as_deref()) {
            ("cancel", _) if held.status == "scheduled" => {
                return Ok(Err(
                    "a scheduled downgrade is dropped with uncancel".to_owned()
                ));
            }
            ("cancel", Some("now")) => {
                let ended = api
                    .cancel_subscription(&key("cancel"), subscription)
                    .await?;
                let view = Subscription::from(&ended);
                let mut tx = self.begin().await?;
                apply(&mut tx, &self.stripe.catalog, &view, true, observed).await?;
                return Ok(self.done(tx, "ended", &view));
            }
            ("cancel", _) if view.cancel_at_period_end => ("unchanged", None),
            ("cancel", _) => {
                let updated = api
                    .set_cancel_at_period_end(&key("cancel"), subscription, true)
                    .await?;
                ("canceled", Some(updated))
            }
            ("uncancel", _) if held.status == "scheduled" => {
                return self.unschedule(&current, plan, observed).await;
            }
            ("uncancel", _) if !(view.cancel_at_period_end || view.cancel_at.is_some()) => {
                ("unchanged", None)
            }
            ("uncancel", _) => {
                let updated = api
                    .set_cancel_at_period_end(&key("uncancel"), subscription, false)
                    .await?;
                ("uncanceled", Some(updated))
            }
            ("quantity", _) => {
                let quantity = change.quantity.unwrap_or(1);
                if view.quantity() == quantity {
                    ("unchanged", None)
                } else {
                    let units = u64::try_from(quantity).unwrap_or(1);
                    let updated = api
                        .set_quantity(&key("quantity"), &current, units, change.prorate)
                        .await?;
                    ("quantity", Some(updated))
                }
            }
            (kind, _) => return Ok(Err(format!("unknown change {kind}"))),
        };
        let view = updated.as_ref().map_or(view, Subscription::from);
        let mut tx = self.begin().await?;
        apply(&mut tx, &self.stripe.catalog, &view, false, observed).await?;
        Ok(self.done(tx, what, &view))
    }

    /// A plan without a subscription: a cancel ends it now; there is nothing to uncancel or
    /// count.
    async fn local(&self, plan: &Plan) -> Result<Carried<Done>, JobError> {
        if self.change.kind != "cancel" {
            return Ok(Err(format!(
                "plan {} has no Stripe subscription: only cancel applies to it",
                plan.id
            )));
        }
        let mut tx = self.begin().await?;
        let catalog = &self.stripe.catalog;
        let customer_pk = self.change.customer_pk;
        let ended = plans::end_local(&mut tx, catalog, customer_pk, plan, Utc::now()).await?;
        let what = if ended { "ended" } else { "unchanged" };
        Ok(Ok((tx, (what, None))))
    }

    /// Drops the downgrade to `plan` scheduled on `subscription`: its price goes back to the
    /// plan the subscription grants now, without proration (nothing was billed yet).
    async fn unschedule(
        &self,
        subscription: &stripe_shared::Subscription,
        plan: &Plan,
        observed: i64,
    ) -> Result<Carried<Done>, JobError> {
        let mut conn = self.pool.acquire().await?;
        let current = plans::live_plan_of(&mut conn, subscription.id.as_str()).await?;
        drop(conn);
        let catalog = &self.stripe.catalog;
        let Some(current) = current.as_deref().and_then(|id| catalog.plan(id)) else {
            return Ok(Err(format!(
                "subscription {} grants no plan of the catalog to go back to",
                subscription.id
            )));
        };
        let objects = ensure_plan_objects(self.stripe, self.pool, current).await?;
        let Some(price) = objects.price else {
            return Err(JobError::retryable(anyhow::anyhow!(
                "plan {} has no Stripe price yet",
                current.id
            )));
        };
        let metadata = std::collections::HashMap::from([
            ("plan_id".to_owned(), current.id.clone()),
            ("plan_change_id".to_owned(), self.change.id.clone()),
        ]);
        let key = format!("rc-change-{}-unschedule", self.change.id);
        let updated = self
            .stripe
            .api
            .swap_price(&key, subscription, &price, None, false, None, metadata)
            .await?;
        let view = Subscription::from(&updated);
        let mut tx = self.begin().await?;
        plans::unschedule(&mut tx, &view.id, &plan.id, Utc::now()).await?;
        apply(&mut tx, catalog, &view, false, observed).await?;
        Ok(self.done(tx, "unscheduled", &view))
    }

    fn done(
        &self,
        tx: Transaction<'static, Postgres>,
        what: &'static str,
        view: &Subscription,
    ) -> Carried<Done> {
        Ok((tx, (what, Some(view.id.clone()))))
    }

    /// A transaction whose plan changes the timeline attributes to whoever asked.
    async fn begin(&self) -> Result<Transaction<'static, Postgres>, JobError> {
        let mut tx = self.pool.begin().await?;
        activity::set_source(&mut tx, &self.change.actor, None).await?;
        Ok(tx)
    }
}
