//! `customer.discount.*`: a customer's discounts, newest event wins (a removal for good), so
//! they converge in any order; `coupon.*`: the coupons they are redeemed from (what they take
//! off, and which catalog reward they stand for). A discount naming a coupon we do not know
//! yet queues a read of it from Stripe (`reward.coupon`), when Stripe is configured.

use sqlx::PgConnection;

use super::{resolve_customer, unknown_customer};
use crate::jobs::FetchCoupon;
use crate::store::discounts::{self, DiscountState};
use crate::stripe::discount::{Coupon, Discount};
use crate::stripe::event::object;
use crate::stripe::objects::{Expandable, timestamp};
use outbox::{EventHandler, JobError, Outcome, StoredEvent};

pub(super) const EVENT_TYPES: &[&str] = &[
    "customer.discount.created",
    "customer.discount.updated",
    "customer.discount.deleted",
];

pub(super) const COUPON_EVENT_TYPES: &[&str] =
    &["coupon.created", "coupon.updated", "coupon.deleted"];

#[derive(Clone)]
pub(super) struct DiscountHandler {
    /// Read unknown coupons from Stripe (only when Stripe is configured).
    pub fetch_coupons: bool,
}

impl EventHandler for DiscountHandler {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<Outcome, JobError> {
        let discount: Discount = object(event)?;
        let removed = (event.event_type == "customer.discount.deleted").then_some(event.created);
        apply(conn, &discount, removed, event.created, self.fetch_coupons).await
    }
}

/// Applies a discount as seen at `observed` (an event's `created`, or when the API returned
/// it); `removed`: when `customer.discount.deleted` says it was removed. The same path for
/// webhooks and the jobs that redeem rewards.
pub(crate) async fn apply(
    conn: &mut PgConnection,
    discount: &Discount,
    removed: Option<i64>,
    observed: i64,
    fetch_coupons: bool,
) -> Result<Outcome, JobError> {
    let Some(coupon_id) = discount.coupon_id() else {
        return Ok(Outcome::Skipped(format!(
            "discount {} names no coupon",
            discount.id
        )));
    };
    let stripe_customer = discount.customer.as_ref().map(Expandable::id);
    let Some(customer_pk) = resolve_customer(conn, stripe_customer, None).await? else {
        return Ok(Outcome::Skipped(unknown_customer(stripe_customer)));
    };
    if let Some(coupon) = discount.coupon() {
        discounts::save_coupon(conn, &stored(coupon, false), None, observed).await?;
    }
    let start = timestamp(discount.start).ok_or_else(|| {
        JobError::permanent(anyhow::anyhow!(
            "discount {}: start {} is not a time",
            discount.id,
            discount.start
        ))
    })?;
    let state = DiscountState {
        id: &discount.id,
        customer_pk,
        coupon_id,
        promotion_code_id: discount.promotion_code.as_ref().map(Expandable::id),
        subscription_id: discount.subscription.as_deref(),
        start,
        end: discount.end.and_then(timestamp),
        removed_at: removed.and_then(timestamp),
        observed,
    };
    let fresh = discounts::record(conn, &state).await?;
    if fetch_coupons && !discounts::coupon_known(conn, coupon_id).await? {
        let job = FetchCoupon {
            coupon_id: coupon_id.to_owned(),
        };
        outbox::enqueue(conn, &job).await?;
    }
    Ok(if fresh {
        Outcome::Applied
    } else {
        Outcome::Skipped(format!(
            "stale: a newer event for {} was applied already",
            discount.id
        ))
    })
}

#[derive(Clone)]
pub(super) struct CouponHandler;

impl EventHandler for CouponHandler {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<Outcome, JobError> {
        let coupon: Coupon = object(event)?;
        let deleted = event.event_type == "coupon.deleted";
        let saved =
            discounts::save_coupon(conn, &stored(&coupon, deleted), None, event.created).await?;
        Ok(if saved {
            Outcome::Applied
        } else {
            Outcome::Skipped(format!(
                "stale: a newer event for coupon {} was applied already",
                coupon.id
            ))
        })
    }
}

/// A coupon as we keep it.
pub(crate) fn stored(coupon: &Coupon, deleted: bool) -> discounts::Coupon {
    discounts::Coupon {
        id: coupon.id.clone(),
        name: coupon.name.clone(),
        percent_off: coupon.percent_off,
        amount_off: coupon.amount_off,
        currency: coupon.currency.clone(),
        duration: coupon.duration.clone(),
        duration_in_months: coupon
            .duration_in_months
            .and_then(|m| i32::try_from(m).ok()),
        reward_id: coupon.reward_id().map(str::to_owned),
        deleted: deleted || coupon.deleted,
    }
}
