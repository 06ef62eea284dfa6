//! `customer.discount.*`: a customer's discounts; `coupon.*`: the coupons they are redeemed
//! from; both synced into the store by [`sync::discount`] (newest event wins, a removal for
//! good). A discount naming a coupon we do not know yet queues a read of it from Stripe
//! (`reward.coupon`), when Stripe is configured.
//!
//! [`sync::discount`]: crate::sync::discount

use sqlx::PgConnection;

use crate::stripe::discount::{Coupon, Discount};
use crate::stripe::event::object;
use crate::sync::discount::{apply, save_coupon};
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
        let saved = save_coupon(conn, &coupon, deleted, None, event.created).await?;
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
