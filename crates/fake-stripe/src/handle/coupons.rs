//! Coupons, promotion codes and discounts as a test sees them: made in the dashboard, and
//! those that exist.

use serde_json::Value;

use super::FakeStripe;
use crate::{coupons, promotion_codes};

impl FakeStripe {
    /// A coupon made in the dashboard: `params` are those of `POST /v1/coupons` (e.g.
    /// `[("id", "SPRING"), ("percent_off", "25"), ("duration", "forever")]`).
    /// `coupon.created` is delivered. Returns its id. Refused as the API refuses.
    pub async fn create_coupon_in_dashboard(
        &self,
        params: &[(&str, &str)],
    ) -> anyhow::Result<String> {
        self.fake
            .act(|state| coupons::create_in_dashboard(state, params))
            .await
    }

    /// A promotion code `code` for `coupon` made in the dashboard (active, for any customer):
    /// `promotion_code.created` is delivered. Returns its id (`promo_...`).
    pub async fn create_promotion_code_in_dashboard(
        &self,
        coupon: &str,
        code: &str,
    ) -> anyhow::Result<String> {
        self.fake
            .act(|state| promotion_codes::create_code_in_dashboard(state, coupon, code))
            .await
    }

    /// The coupons that exist (deleted ones are left out), by id.
    pub fn coupons(&self) -> Vec<Value> {
        self.fake.lock().coupons.values().cloned().collect()
    }

    /// Every promotion code, in creation order.
    pub fn promotion_codes(&self) -> Vec<Value> {
        self.fake.lock().promotion_codes.values().cloned().collect()
    }

    /// Every discount made, in creation order, including those removed or ended.
    pub fn discounts(&self) -> Vec<Value> {
        self.fake.lock().discounts.values().cloned().collect()
    }
}
