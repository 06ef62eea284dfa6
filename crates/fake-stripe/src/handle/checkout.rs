//! Checkout Sessions as a test drives them: the customer pays (with a payment method's kind,
//! or a promotion code) or lets one expire; the sessions made.

use serde_json::Value;

use super::FakeStripe;
use crate::{PaymentMethodKind, checkout};

impl FakeStripe {
    /// The customer pays the checkout session: the subscription is created (active, its
    /// first invoice paid; `trialing` with a $0 invoice for a trial), the session completes,
    /// and `customer.subscription.created`, `customer.discount.created` (each discount the
    /// session applies), `invoice.paid` and `checkout.session.completed` are delivered in that
    /// order (`customer.created` first when the session made the customer). The customer's
    /// default payment method is kept if it is a card, else a new card replaces it; with
    /// `payment_method_collection=if_required` and nothing due now (a trial), none is
    /// collected and the session's `payment_status` is `no_payment_required`.
    pub async fn complete_checkout(&self, session_id: &str) -> anyhow::Result<()> {
        self.fake.complete_checkout(session_id, None).await
    }

    /// The customer pays the checkout session with a new payment method of `kind`, which
    /// becomes their default.
    ///
    /// - `Card`, `ThreeDSecure` (authenticated on the checkout page; the card is saved as one
    ///   that needs nothing more): as [`FakeStripe::complete_checkout`], paid.
    /// - `AsyncDebit`: the subscription starts `incomplete` (first invoice `open`, its
    ///   PaymentIntent `processing`); the session completes with `payment_status: "unpaid"`.
    ///   Delivered: `customer.subscription.created`, `checkout.session.completed`. Then
    ///   [`FakeStripe::settle_async_payment`] decides it.
    /// - `Declining`: refused (the checkout page refuses a declined card); nothing changes.
    ///
    /// Refused too for a session that collects no payment method (`if_required`, nothing
    /// due): its page asks for none.
    pub async fn complete_checkout_with(
        &self,
        session_id: &str,
        kind: PaymentMethodKind,
    ) -> anyhow::Result<()> {
        self.fake
            .run(|state| checkout::complete(state, session_id, Some(kind), None))
            .await
    }

    /// As [`FakeStripe::complete_checkout`], with a promotion code the customer typed on the
    /// checkout page (matched regardless of case among active codes). The session must have
    /// `allow_promotion_codes=true`; the code must be redeemable by the session's customer.
    /// Its coupon becomes a discount on the subscription (`customer.discount.created` after
    /// `customer.subscription.created`) and on its first invoice; the session shows it in
    /// `discounts` and its amounts. Refused, with nothing changed, otherwise.
    pub async fn complete_checkout_with_code(
        &self,
        session_id: &str,
        code: &str,
    ) -> anyhow::Result<()> {
        self.fake.complete_checkout(session_id, Some(code)).await
    }

    /// The open session expires unpaid: `checkout.session.expired` is delivered.
    pub async fn expire_checkout(&self, session_id: &str) -> anyhow::Result<()> {
        self.fake
            .run(|state| checkout::expire(state, session_id))
            .await
    }

    pub fn checkout_sessions(&self) -> Vec<Value> {
        self.fake.lock().sessions.values().cloned().collect()
    }
}
