//! Subscriptions as a test drives them: made in the dashboard, the status changes Stripe makes
//! on its own, cancellation, a status changed behind the daemon's back; the subscriptions made.

use serde_json::Value;

use super::FakeStripe;
use crate::{customers, lifecycle, subscriptions, transitions, webhooks};

impl FakeStripe {
    /// A subscription to `price` made in the dashboard (not by the daemon), with `metadata`:
    /// the same as `POST /v1/subscriptions` for that customer. A customer without a default
    /// payment method is given a card first; the first invoice is charged as the payment
    /// method's kind says (a card: `active` and paid). Delivered as on the API path:
    /// `customer.subscription.created`, then `invoice.paid` (or the failure's event).
    /// Returns the subscription id.
    pub async fn subscribe_in_dashboard(
        &self,
        customer: &str,
        price: &str,
        metadata: &[(&str, &str)],
    ) -> anyhow::Result<String> {
        self.fake
            .act(|state| customers::subscribe_in_dashboard(state, customer, price, metadata))
            .await
    }

    /// Stripe's retries are exhausted: a `past_due` subscription becomes `unpaid`;
    /// `customer.subscription.updated` is delivered. Refused in any other status.
    pub async fn mark_unpaid(&self, subscription_id: &str) -> anyhow::Result<()> {
        self.fake
            .run(|state| transitions::mark_unpaid(state, subscription_id))
            .await
    }

    /// 23 hours passed without the first payment: `incomplete` → `incomplete_expired`
    /// (`ended_at` set); its open first invoice is voided and its PaymentIntent `canceled`.
    /// Delivered in order: `customer.subscription.updated`, `invoice.voided`. Refused if the
    /// subscription is not `incomplete`.
    pub async fn expire_incomplete(&self, subscription_id: &str) -> anyhow::Result<()> {
        self.fake
            .run(|state| transitions::expire_incomplete(state, subscription_id))
            .await
    }

    /// Stripe pauses the `active`, `trialing` or `past_due` subscription (status `paused`, as
    /// at a trial's end without a payment method). Delivered in order:
    /// `customer.subscription.paused`, `customer.subscription.updated`.
    pub async fn pause_subscription(&self, subscription_id: &str) -> anyhow::Result<()> {
        self.fake
            .run(|state| transitions::pause(state, subscription_id))
            .await
    }

    /// Resumes a paused subscription, as `POST /v1/subscriptions/{id}/resume` does: status
    /// `active`, a new period starting now (`billing_cycle_anchor` now), a paid invoice
    /// (`billing_reason` `subscription_update`). Delivered in order:
    /// `customer.subscription.resumed`, `customer.subscription.updated`, `invoice.paid`.
    pub async fn resume_subscription(&self, subscription_id: &str) -> anyhow::Result<()> {
        let request = webhooks::EventRequest::default();
        self.fake
            .run(|state| Ok(transitions::resume(state, subscription_id, &request)?.1))
            .await
    }

    /// As in the dashboard (flexible billing mode): the subscription will cancel at `at`
    /// (unix seconds): `cancel_at = at`, `cancel_at_period_end` false, `canceled_at` now,
    /// `cancellation_details.reason` `cancellation_requested`. `customer.subscription.updated`
    /// is delivered. (The API takes `cancel_at` on `POST /v1/subscriptions/{id}` too:
    /// seconds, `min_period_end`, `max_period_end`, `max_billed_until`, or `""` to clear.)
    pub async fn set_cancel_at(&self, subscription_id: &str, at: i64) -> anyhow::Result<()> {
        self.fake
            .run(|state| subscriptions::set_cancel_at(state, subscription_id, at))
            .await
    }

    /// The subscription ends now (as at the end of a period it was set to cancel at):
    /// `customer.subscription.deleted` is delivered. No prorations and no invoice, and
    /// pending invoice items are left alone; `DELETE /v1/subscriptions/{id}` is the API's
    /// way, with its `prorate` and `invoice_now`.
    pub async fn cancel_subscription(&self, subscription_id: &str) -> anyhow::Result<()> {
        self.fake
            .run(|state| lifecycle::end(state, subscription_id, &Default::default()))
            .await
    }

    /// Changes the status behind the daemon's back: no webhook.
    ///
    /// # Panics
    /// If there is no such subscription.
    pub fn set_subscription_status(&self, subscription_id: &str, status: &str) {
        let mut state = self.fake.lock();
        let subscription = state
            .subscriptions
            .get_mut(subscription_id)
            .unwrap_or_else(|| panic!("fake Stripe: no subscription {subscription_id}"));
        subscription["status"] = Value::String(status.to_owned());
    }

    pub fn subscriptions(&self) -> Vec<Value> {
        self.fake.lock().subscriptions.values().cloned().collect()
    }
}
