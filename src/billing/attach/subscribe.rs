//! An attach that starts a subscription: charged at once when the customer can pay (its
//! outcome settled from the first payment), else a Checkout Session finished by its webhook.

use std::collections::HashMap;

use chrono::Utc;
use outbox::JobError;

use super::{Effects, Run, record_discounts};
use crate::store::{attaches, plans};
use crate::stripe::coupons::discounts_of;
use crate::stripe::discount::Discount;
use crate::stripe::objects::Subscription;
use crate::stripe::subscriptions::FirstPayment;
use crate::sync::subscription::apply;

impl Run<'_> {
    /// The customer can pay: a subscription, charged at once.
    pub(super) async fn subscribe(&self, customer: &str, price: &str) -> Result<Effects, JobError> {
        let metadata = self.metadata().await?;
        let key = self.key("subscription");
        // Taken before the call: an event Stripe makes about the subscription after it is
        // newer than what the call returns, and wins.
        let observed = Utc::now().timestamp();
        let (created, payment) = self
            .stripe
            .api
            .create_subscription(
                &key,
                customer,
                price,
                self.quantity(),
                self.trial(),
                self.redeemed(),
                metadata,
            )
            .await?;
        let discounts = discounts_of(&created);
        self.settle(
            &Subscription::from(&created),
            &payment,
            &discounts,
            observed,
        )
        .await
    }

    /// The attach's outcome from its subscription as read at `observed`, recorded through the
    /// same path as its webhooks (so a newer event already applied wins): paid → `active`
    /// and provisioned; the first payment needs the customer → `requires_action` with the
    /// invoice's hosted page; still processing → `awaiting_payment`. Its webhooks finish it.
    pub(super) async fn settle(
        &self,
        view: &Subscription,
        payment: &FirstPayment,
        discounts: &[Discount],
        observed: i64,
    ) -> Result<Effects, JobError> {
        let mut tx = self.begin().await?;
        apply(&mut tx, &self.stripe.catalog, view, false, observed).await?;
        record_discounts(&mut tx, discounts, observed).await?;
        let status = plans::subscription_status(&mut tx, &view.id)
            .await?
            .unwrap_or_else(|| view.status.clone());
        let id = &self.attach.id;
        match (status.as_str(), payment.status.as_deref()) {
            ("incomplete", Some("processing") | None) => {
                // A bank debit on its way: invoice.paid or the subscription's update finish it.
                attaches::transition(
                    &mut tx,
                    id,
                    &["pending"],
                    "awaiting_payment",
                    Some(&view.id),
                )
                .await?;
            }
            ("incomplete", Some(intent)) => {
                let reason = match (intent, &payment.error) {
                    ("requires_action", _) => "authentication_required: the customer must \
                                               confirm the payment (3-D Secure)"
                        .to_owned(),
                    (_, Some(error)) => format!("payment_failed: {error}"),
                    (other, None) => format!("payment_required: the payment is {other}"),
                };
                let url = payment.hosted_invoice_url.as_deref();
                attaches::require_action(&mut tx, id, &view.id, url, &reason).await?;
            }
            ("incomplete_expired" | "canceled", _) => {
                let why = format!("the subscription ended before its first payment ({status})");
                attaches::end(&mut tx, id, &["pending"], "expired", &why).await?;
            }
            _ => {
                attaches::transition(&mut tx, id, &["pending"], "active", Some(&view.id)).await?;
            }
        }
        Ok(Effects(tx))
    }

    /// The customer cannot pay yet: a Checkout Session, finished by its webhook.
    pub(super) async fn checkout(&self, customer: &str, price: &str) -> Result<Effects, JobError> {
        let metadata = self.metadata().await?;
        let mut subscription_metadata = HashMap::from([
            ("customer_id".to_owned(), metadata["customer_id"].clone()),
            ("plan_id".to_owned(), self.plan.id.clone()),
        ]);
        if let Some(entity) = metadata.get("entity_id") {
            subscription_metadata.insert("entity_id".to_owned(), entity.clone());
        }
        // The API requires both URLs; an attach without them fails at Stripe, visibly.
        let success = self.attach.success_url.as_deref().unwrap_or_default();
        let cancel = self.attach.cancel_url.as_deref().unwrap_or_default();
        let key = self.key("checkout");
        let (session, url) = self
            .stripe
            .api
            .create_checkout_session(
                &key,
                customer,
                price,
                self.quantity(),
                self.trial().map(|t| t.days),
                self.discount,
                success,
                cancel,
                metadata,
                subscription_metadata,
            )
            .await?;
        let mut tx = self.begin().await?;
        attaches::set_checkout(&mut tx, &self.attach.id, &session, url.as_deref()).await?;
        Ok(Effects(tx))
    }
}
