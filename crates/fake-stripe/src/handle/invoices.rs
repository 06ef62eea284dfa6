//! Invoices as a test drives them: a period's renewal, its payment (paid, charged, failed,
//! settled later); the invoices, invoice items and PaymentIntents made.

use serde_json::Value;

use super::FakeStripe;
use crate::{invoices, payments};

impl FakeStripe {
    /// The period ends: the subscription's items move on one interval and a draft
    /// `subscription_cycle` invoice for the new period is created, with the customer's
    /// pending invoice items that are not for another subscription (this one's prorations
    /// as `proration: true` lines), which are then invoiced, less the subscription's
    /// discounts that still apply. Delivered: `customer.discount.deleted` for each discount
    /// that ended (a used `once`, a `repeating` past its end), then `invoice.created`.
    /// Refused for a subscription in a trial (its trial ends first: [`FakeStripe::end_trial`]).
    /// Returns the invoice id.
    pub async fn renew(&self, subscription_id: &str) -> anyhow::Result<String> {
        self.fake
            .act(|state| invoices::renew(state, subscription_id))
            .await
    }

    /// The customer pays the draft or open invoice (on the hosted invoice page, or by
    /// authenticating 3-D Secure): it is finalized and paid, its PaymentIntent `succeeded`;
    /// an `incomplete`, `past_due` or `unpaid` subscription becomes `active`.
    /// `customer.subscription.updated` (what changed since the renewal, or the status becoming
    /// `active`) then `invoice.paid` are delivered. Refused while its payment is `processing`.
    pub async fn pay_invoice(&self, invoice_id: &str) -> anyhow::Result<()> {
        self.fake
            .run(|state| payments::pay(state, invoice_id))
            .await
    }

    /// Stripe charges the draft or open invoice (as at a renewal) with the subscription's
    /// default payment method, else the customer's, as its kind says:
    /// - `Card`: as [`FakeStripe::pay_invoice`].
    /// - `Declining`, or no payment method: as [`FakeStripe::fail_invoice_payment`].
    /// - `ThreeDSecure`: the invoice is finalized `open`, its PaymentIntent `requires_action`;
    ///   an `active`/`trialing` subscription becomes `past_due`. Delivered:
    ///   `invoice.payment_action_required`, then `customer.subscription.updated` (if anything
    ///   changed).
    /// - `AsyncDebit`: the invoice is finalized `open`, its PaymentIntent `processing`; the
    ///   subscription is unchanged; nothing is delivered until
    ///   [`FakeStripe::settle_async_payment`].
    pub async fn charge_invoice(&self, invoice_id: &str) -> anyhow::Result<()> {
        self.fake
            .run(|state| payments::charge(state, invoice_id))
            .await
    }

    /// A charge attempt of a draft or open invoice fails (a renewal whose card is declined):
    /// the invoice is finalized `open`, `attempt_count` + 1, `next_payment_attempt` in three
    /// days, `hosted_invoice_url` set; its PaymentIntent `requires_payment_method` with a
    /// `card_declined` `last_payment_error`; an `active`/`trialing` subscription becomes
    /// `past_due`. Delivered in order: `invoice.payment_failed`, then
    /// `customer.subscription.updated` (if anything changed, a renewal's new period too).
    pub async fn fail_invoice_payment(&self, invoice_id: &str) -> anyhow::Result<()> {
        self.fake
            .run(|state| payments::fail(state, invoice_id))
            .await
    }

    /// A processing (`AsyncDebit`) first or renewal payment of invoice `invoice_id` settles.
    ///
    /// `succeeded`: PaymentIntent `succeeded`, invoice `paid`, subscription `active`.
    /// Delivered in order: `customer.subscription.updated` (if anything changed),
    /// `invoice.paid`, and if the subscription came from a Checkout Session,
    /// `checkout.session.async_payment_succeeded` (session `payment_status: "paid"`).
    ///
    /// Not `succeeded`: PaymentIntent `requires_payment_method` with an `insufficient_funds`
    /// `last_payment_error`; the invoice stays `open` (`attempt_count` at least 1). A first
    /// payment leaves the subscription `incomplete`; a renewal makes an `active` one
    /// `past_due`. Delivered in order: `invoice.payment_failed`,
    /// `customer.subscription.updated` (renewals only, if anything changed), and for a
    /// checkout `checkout.session.async_payment_failed` (`payment_status` stays "unpaid").
    ///
    /// Refused if the invoice's PaymentIntent is not `processing`.
    pub async fn settle_async_payment(
        &self,
        invoice_id: &str,
        succeeded: bool,
    ) -> anyhow::Result<()> {
        self.fake
            .run(|state| payments::settle(state, invoice_id, succeeded))
            .await
    }

    pub fn invoices(&self) -> Vec<Value> {
        self.fake.lock().invoices.values().cloned().collect()
    }

    pub fn invoice_items(&self) -> Vec<Value> {
        self.fake.lock().invoice_items.values().cloned().collect()
    }

    /// The customer's invoice items not yet on an invoice, oldest first: prorations waiting
    /// for their subscription's next invoice, and items created without `invoice`.
    pub fn pending_invoice_items(&self, customer_id: &str) -> Vec<Value> {
        self.fake
            .lock()
            .invoice_items
            .values()
            .filter(|item| item["customer"] == customer_id && item["invoice"].is_null())
            .cloned()
            .collect()
    }

    /// Every PaymentIntent, in creation order.
    pub fn payment_intents(&self) -> Vec<Value> {
        self.fake.lock().payment_intents.values().cloned().collect()
    }
}
