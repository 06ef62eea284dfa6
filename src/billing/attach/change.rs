//! An attach within a group that already has a paid plan: the subscription's price is
//! swapped (an upgrade prorates at once; a downgrade is billed from the next period and its
//! plan is `scheduled` until then), keeping the subscription's discounts.

use chrono::Utc;
use outbox::JobError;

use super::{Effects, Run, record_discounts};
use crate::billing::reward::redeems;
use crate::store::{attaches, plans};
use crate::stripe::coupons::{DiscountChange, discounts_of};
use crate::stripe::objects::Subscription;

impl Run<'_> {
    /// Within a group: an upgrade prorates and switches now; a downgrade is billed from the
    /// next period and the plan is `scheduled` until then.
    pub(super) async fn change_plan(
        &self,
        current: &str,
        subscription: &str,
        price: &str,
    ) -> Result<Effects, JobError> {
        let api = &self.stripe.api;
        let subscription = api.retrieve_with_discounts(subscription).await?;
        let upgrade = self.amount(&self.plan.id) >= self.amount(current);
        let metadata = self.metadata().await?;
        let observed = Utc::now().timestamp();
        let quantity = Some(self.quantity());
        let prorate = upgrade && self.attach.prorate;
        // The subscription's discounts stay; the attach's is added unless it is there.
        let keep: Vec<String> = subscription
            .discounts
            .iter()
            .map(|d| d.id().to_string())
            .collect();
        let had = discounts_of(&subscription);
        let add = self
            .redeemed()
            .filter(|wanted| !had.iter().any(|d| redeems(d, wanted)));
        let change = add.map(|add| DiscountChange { keep: &keep, add });
        let updated = api
            .swap_price(
                &self.key("swap"),
                &subscription,
                price,
                quantity,
                prorate,
                change,
                metadata,
            )
            .await?;
        let view = Subscription::from(&updated);
        let mut tx = self.begin().await?;
        record_discounts(&mut tx, &discounts_of(&updated), observed).await?;
        let state = if upgrade {
            "active"
        } else {
            // Scheduled first, so the subscription (already billing the new price) is read
            // as granting the current plan until the next period.
            let starts_at = view.period().1.unwrap_or_else(Utc::now);
            plans::schedule(
                &mut tx,
                self.attach.customer_pk,
                self.plan,
                &view.id,
                starts_at,
            )
            .await?;
            "scheduled"
        };
        // Either way the answer is the subscription's newest state: an older event still on
        // its way (the price before the swap) cannot undo the change.
        self.provision(&mut tx, &view, observed).await?;
        attaches::transition(
            &mut tx,
            &self.attach.id,
            &["pending"],
            state,
            Some(&view.id),
        )
        .await?;
        Ok(Effects(tx))
    }
}
