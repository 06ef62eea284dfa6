//! Executing an attach: ensure the Stripe customer and the plan's prices, then
//! - within a group that already has a paid plan: an upgrade swaps the subscription's price
//!   with proration at once; a downgrade swaps it without proration (billed from the next
//!   period) and the plan is `scheduled` until that period starts;
//! - a customer with a default payment method: a subscription, charged at once: provisioned
//!   when paid; `requires_action` with the invoice's hosted page when the payment needs the
//!   customer (3-D Secure, a decline); `awaiting_payment` while a bank debit processes;
//! - otherwise: a Checkout Session, completed later by `checkout.session.completed`.
//!
//! A reward (its coupon, made if missing) or a promotion code the attach carries is redeemed
//! on the subscription it creates, on the price swap of a plan change (keeping the
//! subscription's other discounts), or by its Checkout Session, which may instead let the
//! customer type a code. The discounts Stripe returns are recorded as their webhooks would.
//!
//! Every Stripe call's idempotency key is derived from the attach id, so a retried job
//! creates nothing twice. Before it subscribes or opens a Checkout Session, the attach looks
//! at the customer's subscriptions in Stripe: one already live for the plan (made by an
//! earlier attach whose webhook is still on its way, or outside the daemon) is taken over,
//! never doubled. A price Stripe no longer knows is created again, once, and the call retried.
//! An attach whose job dies is marked `failed` with the error, so its caller learns.

mod change;
mod subscribe;

use std::collections::HashMap;

use chrono::Utc;
use outbox::JobError;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use super::catalog_sync::{ensure_plan_objects, recreate_plan_objects};
use super::coupons::ensure_coupon;
use super::customers::ensure_stripe_customer;
use super::{Carried, StripeContext};
use crate::catalog::Plan;
use crate::store::attaches::{self, Attach};
use crate::store::reward_grants::{self, Offer};
use crate::store::stripe_ids::PlanObjects;
use crate::store::{activity, customers, entities, plans};
use crate::stripe::client::CallError;
use crate::stripe::coupons::{CheckoutDiscount, NewDiscount};
use crate::stripe::discount::Discount;
use crate::stripe::objects::Subscription;
use crate::stripe::subscriptions::{FirstPayment, Trial};
use crate::sync::discount;
use crate::sync::subscription::{apply, plan_of};

/// Carries out a pending attach: what it did (its state moved on with it), uncommitted, or
/// why it cannot be done.
pub(crate) async fn carry_out(
    stripe: &StripeContext,
    pool: &PgPool,
    attach: &Attach,
) -> Result<Carried<()>, JobError> {
    let mut conn = pool.acquire().await?;
    let offer = reward_grants::attach_offer(&mut conn, &attach.id).await?;
    drop(conn);
    let Some(plan) = stripe.catalog.plan(&attach.plan_id) else {
        return Ok(Err("the plan is no longer in the catalog".to_owned()));
    };
    let discount = match checkout_discount(stripe, pool, &offer).await? {
        Ok(discount) => discount,
        Err(why) => return Ok(Err(why)),
    };
    let run = Run {
        stripe,
        pool,
        attach,
        plan,
        discount: &discount,
        key_suffix: "",
    };
    let Effects(tx) = run.execute().await?;
    Ok(Ok((tx, ())))
}

/// One attach being carried out.
#[derive(Clone, Copy)]
struct Run<'a> {
    stripe: &'a StripeContext,
    pool: &'a PgPool,
    attach: &'a Attach,
    plan: &'a Plan,
    /// What the attach redeems (or lets the customer type at checkout).
    discount: &'a CheckoutDiscount,
    /// Appended to idempotency keys on the retry after recreating a lost price.
    key_suffix: &'a str,
}

impl Run<'_> {
    async fn execute(&self) -> Result<Effects, JobError> {
        if self.plan.price.is_none() {
            // A free plan needs nothing from Stripe.
            let mut tx = self.begin().await?;
            let catalog = &self.stripe.catalog;
            plans::activate_local(
                &mut tx,
                catalog,
                self.attach.customer_pk,
                self.plan,
                Utc::now(),
            )
            .await?;
            attaches::transition(&mut tx, &self.attach.id, &["pending"], "active", None).await?;
            return Ok(Effects(tx));
        }
        let customer =
            ensure_stripe_customer(self.stripe, self.pool, self.attach.customer_pk).await?;
        let objects = ensure_plan_objects(self.stripe, self.pool, self.plan).await?;
        let price = self.price(objects)?;
        let result = self.carry_out(&customer, &price).await;
        if !result.as_ref().is_err_and(lost_catalog_object) {
            return result;
        }
        // The account lost the plan's price (or product): create them again, once, and retry
        // under new keys (the old ones would answer with the lost objects).
        let objects = recreate_plan_objects(self.stripe, self.pool, self.plan, &price).await?;
        let price = self.price(objects)?;
        let retry = Run {
            key_suffix: "-recreated",
            ..*self
        };
        retry.carry_out(&customer, &price).await
    }

    fn price(&self, objects: PlanObjects) -> Result<String, JobError> {
        objects.price.ok_or_else(|| {
            JobError::retryable(anyhow::anyhow!(
                "plan {} has no Stripe price yet",
                self.plan.id
            ))
        })
    }

    /// A plan change within the group, else the subscription Stripe already has for the
    /// plan, else a new subscription (the customer can pay) or a Checkout Session.
    async fn carry_out(&self, customer: &str, price: &str) -> Result<Effects, JobError> {
        if let Some((current, subscription)) = self.current_in_group().await? {
            return self.change_plan(&current, &subscription, price).await;
        }
        let observed = Utc::now().timestamp();
        if let Some(existing) = self.billing_in_stripe(customer, price).await? {
            tracing::info!(
                attach = %self.attach.id,
                subscription = %existing.id,
                "the customer has this plan in Stripe already; taking it over"
            );
            let payment = if existing.status == "incomplete" {
                self.stripe.api.retrieve_with_payment(&existing.id).await?.1
            } else {
                FirstPayment::default()
            };
            return self.settle(&existing, &payment, &[], observed).await;
        }
        let can_pay = self
            .stripe
            .api
            .retrieve_customer(customer)
            .await?
            .has_default_payment_method;
        // A trial without a card starts now, whatever the customer can pay with.
        if can_pay || self.trial().is_some_and(|t| !t.card_required) {
            self.subscribe(customer, price).await
        } else {
            self.checkout(customer, price).await
        }
    }

    /// A subscription of the customer in Stripe that bills for this plan, if any.
    async fn billing_in_stripe(
        &self,
        customer: &str,
        price: &str,
    ) -> Result<Option<Subscription>, JobError> {
        let subscriptions = self.stripe.api.list_subscriptions(customer).await?;
        // The customer's own subscriptions, or the entity's: never another's of the two.
        let entity = self.metadata().await?.remove("entity_id");
        let mut conn = self.pool.acquire().await?;
        for sub in subscriptions.iter().map(Subscription::from) {
            if !sub.bills() || sub.metadata.get("entity_id") != entity.as_ref() {
                continue;
            }
            let has_price = sub
                .items
                .data
                .iter()
                .any(|i| i.price().is_some_and(|p| p.id == price));
            let catalog = &self.stripe.catalog;
            if has_price
                || plan_of(&mut conn, catalog, &sub).await?.map(|p| &p.id) == Some(&self.plan.id)
            {
                return Ok(Some(sub));
            }
        }
        Ok(None)
    }

    /// Provisions from the subscription as the API returned it, read at `observed`.
    async fn provision(
        &self,
        tx: &mut PgConnection,
        view: &Subscription,
        observed: i64,
    ) -> Result<(), JobError> {
        apply(tx, &self.stripe.catalog, view, false, observed).await?;
        Ok(())
    }

    /// A transaction whose plan changes the timeline attributes to this attach.
    async fn begin(&self) -> Result<Transaction<'static, Postgres>, JobError> {
        let mut tx = self.pool.begin().await?;
        let source = format!("attach:{}", self.attach.id);
        activity::set_source(&mut tx, &source, None).await?;
        Ok(tx)
    }

    fn key(&self, step: &str) -> String {
        format!("rc-attach-{}-{step}{}", self.attach.id, self.key_suffix)
    }

    /// What every object we create for this attach carries (an entity's: its customer's id
    /// and `entity_id`).
    async fn metadata(&self) -> Result<HashMap<String, String>, JobError> {
        let pk = self.attach.customer_pk;
        let mut conn = self.pool.acquire().await?;
        let customer = customers::by_pk(&mut conn, pk)
            .await?
            .ok_or_else(|| JobError::reject(format!("customer {pk} no longer exists")))?;
        let mut metadata = HashMap::from([
            (
                "customer_id".to_owned(),
                customer.id.unwrap_or_else(|| format!("pk:{pk}")),
            ),
            ("plan_id".to_owned(), self.plan.id.clone()),
            ("attach_id".to_owned(), self.attach.id.clone()),
        ]);
        if let Some(owner) = entities::of_holder(&mut conn, pk).await? {
            let customer_id = owner.customer_id.unwrap_or_default();
            metadata.insert("customer_id".to_owned(), customer_id);
            metadata.insert("entity_id".to_owned(), owner.entity_id);
        }
        Ok(metadata)
    }

    /// The paid plan (and its subscription) this attach would replace, if any.
    async fn current_in_group(&self) -> Result<Option<(String, String)>, JobError> {
        let Some(group) = self.plan.group.as_deref().filter(|_| !self.plan.add_on) else {
            return Ok(None);
        };
        let mut conn = self.pool.acquire().await?;
        let current =
            plans::live_subscription_in_group(&mut conn, self.attach.customer_pk, group).await?;
        Ok(current.filter(|(current, _)| *current != self.plan.id))
    }

    /// The free trial this attach gives, if it claimed one.
    fn trial(&self) -> Option<Trial> {
        let days = u32::try_from(self.attach.trial_days?).ok()?;
        let card_required = self.plan.free_trial.is_none_or(|t| t.card_required);
        Some(Trial {
            days,
            card_required,
        })
    }

    /// The discount a subscription gets (none for a code typed at checkout: there is no
    /// page to type it in).
    fn redeemed(&self) -> Option<&NewDiscount> {
        match self.discount {
            CheckoutDiscount::Redeem(discount) => Some(discount),
            CheckoutDiscount::None | CheckoutDiscount::AllowPromotionCodes => None,
        }
    }

    fn quantity(&self) -> u64 {
        u64::try_from(self.attach.quantity).unwrap_or(1)
    }

    fn amount(&self, plan_id: &str) -> i64 {
        let plan = self.stripe.catalog.plan(plan_id);
        plan.and_then(|p| p.price.as_ref()).map_or(0, |p| p.amount)
    }
}

/// What the attach's offer asks Stripe for: the reward's coupon (made if missing), the
/// promotion code, or a checkout that takes typed codes. `Err`: why it cannot be given.
async fn checkout_discount(
    stripe: &StripeContext,
    pool: &PgPool,
    offer: &Offer,
) -> Result<Result<CheckoutDiscount, String>, JobError> {
    if offer.allow_promotion_codes {
        return Ok(Ok(CheckoutDiscount::AllowPromotionCodes));
    }
    if let Some(id) = &offer.promotion_code_id {
        return Ok(Ok(CheckoutDiscount::Redeem(NewDiscount::PromotionCode(
            id.clone(),
        ))));
    }
    let Some(reward) = &offer.reward_id else {
        return Ok(Ok(CheckoutDiscount::None));
    };
    let Some(reward) = stripe.catalog.reward(reward) else {
        return Ok(Err(format!("reward {reward} is no longer in the catalog")));
    };
    let coupon = ensure_coupon(stripe, pool, reward).await?;
    Ok(Ok(CheckoutDiscount::Redeem(NewDiscount::Coupon(coupon))))
}

/// Discounts Stripe returned, applied as their webhooks would be.
async fn record_discounts(
    tx: &mut PgConnection,
    discounts: &[Discount],
    observed: i64,
) -> Result<(), JobError> {
    for d in discounts {
        discount::apply(tx, d, None, observed, true).await?;
    }
    Ok(())
}

/// Stripe refused a price or product we stored for the plan as unknown.
fn lost_catalog_object(error: &JobError) -> bool {
    error
        .inner()
        .downcast_ref::<CallError>()
        .is_some_and(CallError::lost_catalog_object)
}

/// What an attach did, uncommitted: committed together with the job's completion.
struct Effects(Transaction<'static, Postgres>);
