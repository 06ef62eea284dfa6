//! The catalog's rewards as Stripe coupons, created lazily the first time one is needed, in
//! the current Stripe account (created again when the account or the reward changes: a
//! coupon cannot change what it takes off). Keys name the reward, its content and the
//! account, so concurrent jobs create one coupon. And `reward.coupon`: a coupon some
//! discount names that we do not know (a promotion code's, one made in the dashboard), read
//! from Stripe so the customer view can say what it takes off.

use std::collections::HashMap;

use chrono::Utc;
use outbox::{Done, Job, JobError, Lease};
use sqlx::PgPool;

use super::StripeContext;
use crate::catalog::Reward;
use crate::jobs::FetchCoupon;
use crate::store::discounts::{self, RewardCoupon};
use crate::sync::discount::save_coupon;

/// The reward's coupon in the current account, created if it is missing.
pub(super) async fn ensure_coupon(
    stripe: &StripeContext,
    pool: &PgPool,
    reward: &Reward,
) -> Result<String, JobError> {
    let digest = reward.digest();
    let made_for = RewardCoupon {
        reward_id: &reward.id,
        digest: &digest[..12],
        account: &stripe.account,
    };
    let mut conn = pool.acquire().await?;
    if let Some(id) = discounts::reward_coupon(&mut conn, made_for).await? {
        return Ok(id);
    }
    drop(conn);
    let key = format!(
        "rc-coupon-{}-{}-{}",
        reward.id, stripe.account, made_for.digest
    );
    let metadata = HashMap::from([("reward_id".to_owned(), reward.id.clone())]);
    let observed = Utc::now().timestamp();
    let coupon = stripe.api.create_coupon(&key, reward, metadata).await?;
    let mut conn = pool.acquire().await?;
    save_coupon(&mut conn, &coupon, false, Some(made_for), observed).await?;
    Ok(coupon.id)
}

impl Job for FetchCoupon {
    const KIND: &'static str = "reward.coupon";
    type Context = StripeContext;

    fn key(&self) -> String {
        format!("{}:{}", Self::KIND, self.coupon_id)
    }

    fn ordering_key(&self) -> Option<String> {
        Some(format!("coupon:{}", self.coupon_id))
    }

    async fn run(&self, stripe: &StripeContext, lease: Lease<'_>) -> Result<Done, JobError> {
        let pool = lease.pool();
        let mut conn = pool.acquire().await?;
        let known = discounts::coupon_known(&mut conn, &self.coupon_id).await?;
        drop(conn);
        if known {
            return lease.complete_alone().await;
        }
        let observed = Utc::now().timestamp();
        let coupon = match stripe.api.retrieve_coupon(&self.coupon_id).await {
            Ok(coupon) => coupon,
            Err(error) if error.status == Some(404) => {
                // Deleted before we asked: its discounts show it without details.
                tracing::info!(coupon = %self.coupon_id, "the coupon is gone from Stripe");
                return lease.complete_alone().await;
            }
            Err(error) => return Err(error.into()),
        };
        let mut tx = pool.begin().await?;
        save_coupon(&mut tx, &coupon, false, None, observed).await?;
        lease.complete(tx).await
    }
}
