//! Giving a reward (or a promotion code) to a live subscription (`POST
//! /v1/customers/{id}/rewards`): the reward's coupon is made if missing, then the
//! subscription's discounts become those it has plus the new one (Stripe replaces the list
//! on an update, so the others are named to keep them).
//!
//! The job reads the subscription first: one that has a discount from that coupon (or that
//! promotion code) already is `unchanged` and nothing is called, so a double click or a
//! retry redeems nothing twice; the update's key is `rc-reward-{id}-apply`. Stripe's answer
//! (the discounts, inline) is recorded through the webhooks' own path in the transaction
//! that marks the grant done, so the timeline names whoever asked, and Stripe's
//! `customer.discount.created` about it changes nothing more.

use chrono::Utc;
use outbox::JobError;
use sqlx::PgPool;

use super::coupons::ensure_coupon;
use super::{Carried, StripeContext};
use crate::store::activity;
use crate::store::reward_grants::Grant;
use crate::stripe::coupons::{DiscountChange, NewDiscount, discounts_of};
use crate::stripe::discount::Discount;
use crate::stripe::objects::{Expandable, Subscription};
use crate::sync::discount;

type Tx = sqlx::Transaction<'static, sqlx::Postgres>;

/// What a done grant did (`applied`, `unchanged`), and the discount it is on the
/// subscription as.
type Done = (&'static str, Option<String>);

/// Carries out a pending grant: what it did, uncommitted, or why it cannot be done.
pub(crate) async fn carry_out(
    stripe: &StripeContext,
    pool: &PgPool,
    grant: &Grant,
) -> Result<Carried<Done>, JobError> {
    let wanted = match (&grant.reward_id, &grant.promotion_code_id) {
        (Some(reward), _) => match stripe.catalog.reward(reward) {
            Some(reward) => NewDiscount::Coupon(ensure_coupon(stripe, pool, reward).await?),
            None => return Ok(Err(format!("reward {reward} is no longer in the catalog"))),
        },
        (None, Some(code)) => NewDiscount::PromotionCode(code.clone()),
        (None, None) => return Ok(Err("the grant names no reward".to_owned())),
    };
    let api = &stripe.api;
    let observed = Utc::now().timestamp();
    let current = api
        .retrieve_with_discounts(&grant.stripe_subscription_id)
        .await?;
    if !Subscription::from(&current).bills() {
        return Ok(Err(format!(
            "subscription {} has ended ({})",
            current.id,
            current.status.as_str()
        )));
    }
    let existing = discounts_of(&current);
    if let Some(same) = existing.iter().find(|d| redeems(d, &wanted)) {
        let tx = record(pool, grant, &existing, observed).await?;
        return Ok(Ok((tx, ("unchanged", Some(same.id.clone())))));
    }
    let keep: Vec<String> = current
        .discounts
        .iter()
        .map(|d| d.id().to_string())
        .collect();
    let change = DiscountChange {
        keep: &keep,
        add: &wanted,
    };
    let key = format!("rc-reward-{}-apply", grant.id);
    let updated = api
        .add_discount(&key, &grant.stripe_subscription_id, change)
        .await?;
    let now = discounts_of(&updated);
    let added = now
        .iter()
        .find(|d| !keep.contains(&d.id) && redeems(d, &wanted))
        .or_else(|| now.iter().find(|d| !keep.contains(&d.id)))
        .map(|d| d.id.clone());
    let tx = record(pool, grant, &now, observed).await?;
    Ok(Ok((tx, ("applied", added))))
}

/// Whether `discount` is the one `wanted` would redeem.
pub(super) fn redeems(discount: &Discount, wanted: &NewDiscount) -> bool {
    match wanted {
        NewDiscount::Coupon(coupon) => discount.coupon_id() == Some(coupon.as_str()),
        NewDiscount::PromotionCode(code) => {
            discount.promotion_code.as_ref().map(Expandable::id) == Some(code.as_str())
        }
    }
}

/// The subscription's discounts as Stripe returned them, applied as webhooks apply them, in
/// a transaction the timeline attributes to whoever asked.
async fn record(
    pool: &PgPool,
    grant: &Grant,
    discounts: &[Discount],
    observed: i64,
) -> Result<Tx, JobError> {
    let mut tx = pool.begin().await?;
    activity::set_source(&mut tx, &grant.actor, None).await?;
    for d in discounts {
        discount::apply(&mut tx, d, None, observed, true).await?;
    }
    Ok(tx)
}
