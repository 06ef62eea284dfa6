//! A customer's discounts, newest sighting wins (a removal for good), so they converge in any
//! order; and the coupons they are redeemed from (what they take off, and which catalog
//! reward they stand for). A discount naming a coupon we do not know yet queues a read of it
//! from Stripe (`reward.coupon`), when asked to.

use sqlx::PgConnection;

use super::customer::{resolve_customer, unknown_customer};
use crate::jobs::FetchCoupon;
use crate::store::discounts::{self, DiscountState, RewardCoupon};
use crate::stripe::discount::{Coupon, Discount};
use crate::stripe::objects::{Expandable, timestamp};
use outbox::{JobError, Outcome};

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
/// Records a coupon as seen at `observed` (an event's `created`, or when it was read from
/// the API); `deleted`: a `coupon.deleted` event says so; `made_for`: we made it for that
/// reward. False when stale.
pub(crate) async fn save_coupon(
    conn: &mut PgConnection,
    coupon: &Coupon,
    deleted: bool,
    made_for: Option<RewardCoupon<'_>>,
    observed: i64,
) -> Result<bool, sqlx::Error> {
    discounts::save_coupon(conn, &stored(coupon, deleted), made_for, observed).await
}

/// A coupon as we keep it.
fn stored(coupon: &Coupon, deleted: bool) -> discounts::Coupon {
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
