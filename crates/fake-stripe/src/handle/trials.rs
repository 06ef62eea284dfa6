//! Trials as a test drives them: the warning before the end, the end, and what the clock has
//! made due (see the `trials` module).

use super::FakeStripe;
use crate::{trials, webhooks};

impl FakeStripe {
    /// The trial of a `trialing` subscription ends as scheduled, at its `trial_end` (whatever
    /// the fake's clock says; events are stamped now): see the `trials` module for what
    /// happens with and without a payment method, per
    /// `trial_settings.end_behavior.missing_payment_method`. In short, delivered in order:
    /// `customer.subscription.trial_will_end` (unless already sent), then
    /// - with a payment method: `customer.subscription.updated` (→ `active`, the first paid
    ///   period from `trial_end`), `invoice.created` (`subscription_cycle`), and the charge's
    ///   events (`invoice.paid` for a card);
    /// - without, `create_invoice`: `customer.subscription.updated` (→ `active`),
    ///   `invoice.created`, `invoice.payment_failed`, `customer.subscription.updated`
    ///   (→ `past_due`);
    /// - without, `pause`: `customer.subscription.paused`, `customer.subscription.updated`;
    /// - without, `cancel`: `customer.subscription.deleted`.
    ///
    /// Refused if the subscription is not in a trial.
    pub async fn end_trial(&self, subscription_id: &str) -> anyhow::Result<()> {
        self.fake
            .act(|state| {
                let request = webhooks::EventRequest::default();
                let ending = trials::Ending::Scheduled;
                Ok((
                    (),
                    trials::end(state, subscription_id, ending, &request, None)?.1,
                ))
            })
            .await
    }

    /// Stripe's warning three days before a trial ends: `customer.subscription.trial_will_end`
    /// is delivered (the subscription as it is). Sent once per subscription: refused if it
    /// was sent already (by this, [`FakeStripe::tick`] or the trial's end) or if the
    /// subscription is not in a trial.
    pub async fn trial_will_end(&self, subscription_id: &str) -> anyhow::Result<()> {
        self.fake
            .run(|state| trials::will_end(state, subscription_id))
            .await
    }

    /// Runs what the fake's clock has made due of trials, oldest subscription first: for each
    /// `trialing` subscription, `customer.subscription.trial_will_end` once the clock is
    /// three days or less before `trial_end` (once), and the trial's end (as
    /// [`FakeStripe::end_trial`]) once it is at or past it. Renewals are not run: they stay
    /// [`FakeStripe::renew`]'s. Use with [`FakeStripe::advance_clock`].
    pub async fn tick(&self) -> anyhow::Result<()> {
        self.fake.run(trials::tick).await
    }
}
