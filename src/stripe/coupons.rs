//! Coupons, promotion codes and discounts through async-stripe: the catalog's rewards made
//! coupons, a typed code looked up, a discount added to a subscription.

use stripe_billing::subscription::{DiscountsDataParam, RetrieveSubscription, UpdateSubscription};
use stripe_client_core::StripeRequest;
use stripe_product::coupon::{CreateCoupon, RetrieveCoupon};
use stripe_product::promotion_code::ListPromotionCode;
use stripe_shared::{CouponDuration, Subscription};

use super::client::{CallError, Metadata, PATH_SEGMENT, StripeApi, path_id};
use super::discount::{Coupon, Discount};
use crate::catalog::{Reward, RewardDuration};

/// A discount to redeem: a coupon, or a promotion code (`promo_...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewDiscount {
    Coupon(String),
    PromotionCode(String),
}

/// What a Checkout Session offers: nothing, a discount, or a field to type a code in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CheckoutDiscount {
    #[default]
    None,
    Redeem(NewDiscount),
    AllowPromotionCodes,
}

/// A subscription's discounts after a change: those it has, kept, and one more.
#[derive(Debug, Clone, Copy)]
pub struct DiscountChange<'a> {
    pub keep: &'a [String],
    pub add: &'a NewDiscount,
}

impl DiscountChange<'_> {
    /// The `discounts` parameter of a subscription update (it replaces the list).
    pub(super) fn params(&self) -> Vec<DiscountsDataParam> {
        let mut params: Vec<DiscountsDataParam> = self
            .keep
            .iter()
            .map(|id| {
                let mut p = DiscountsDataParam::new();
                p.discount = Some(id.clone());
                p
            })
            .collect();
        params.push(new_param(self.add));
        params
    }
}

/// `discounts[i]` redeeming `discount`.
pub(super) fn new_param(discount: &NewDiscount) -> DiscountsDataParam {
    let mut p = DiscountsDataParam::new();
    match discount {
        NewDiscount::Coupon(id) => p.coupon = Some(id.clone()),
        NewDiscount::PromotionCode(id) => p.promotion_code = Some(id.clone()),
    }
    p
}

/// A promotion code as far as we check it before redeeming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromotionCode {
    pub id: String,
    pub code: String,
    pub coupon_id: Option<String>,
    /// Only this Stripe customer may redeem it.
    pub customer: Option<String>,
    pub expires_at: Option<i64>,
    pub max_redemptions: Option<i64>,
    pub times_redeemed: i64,
}

impl PromotionCode {
    /// Why `stripe_customer` cannot redeem it now, if it cannot (the restrictions Stripe
    /// would check on the subscription, other than the order's: first time, minimum amount).
    pub fn refusal(&self, stripe_customer: Option<&str>, now: i64) -> Option<&'static str> {
        if self
            .customer
            .as_deref()
            .is_some_and(|only| Some(only) != stripe_customer)
        {
            return Some("it is for another customer");
        }
        if self.expires_at.is_some_and(|at| at <= now) {
            return Some("it has expired");
        }
        if self
            .max_redemptions
            .is_some_and(|max| self.times_redeemed >= max)
        {
            return Some("it has been redeemed as often as it may be");
        }
        None
    }
}

/// The discount objects of a subscription read with `expand[]=discounts`.
pub fn discounts_of(subscription: &Subscription) -> Vec<Discount> {
    subscription
        .discounts
        .iter()
        .filter_map(|d| match d {
            stripe_types::Expandable::Object(d) => Some(Discount::from(&**d)),
            stripe_types::Expandable::Id(_) => None,
        })
        .collect()
}

/// `expand[]` that inlines a subscription's discounts.
pub(super) const DISCOUNTS_EXPAND: &str = "discounts";

impl StripeApi {
    /// A coupon for `reward`, carrying `metadata`.
    pub async fn create_coupon(
        &self,
        idempotency_key: &str,
        reward: &Reward,
        metadata: Metadata,
    ) -> Result<Coupon, CallError> {
        let endpoint = "coupons.create";
        let duration = match reward.duration {
            RewardDuration::Once => CouponDuration::Once,
            RewardDuration::Forever => CouponDuration::Forever,
            RewardDuration::Months(_) => CouponDuration::Repeating,
        };
        let mut request = CreateCoupon::new()
            .duration(duration)
            .name(reward.display_name())
            .metadata(metadata);
        if let Some(months) = reward.duration.months() {
            request = request.duration_in_months(i64::from(months));
        }
        if let Some(percent) = reward.percent_off {
            request = request.percent_off(percent);
        }
        if let (Some(amount), Some(currency)) = (reward.amount_off, &reward.currency) {
            let currency: stripe_types::Currency = currency.parse().map_err(|_| {
                CallError::refused(endpoint, format!("unknown currency {currency}"))
            })?;
            request = request.amount_off(amount).currency(currency);
        }
        let coupon = self
            .call(endpoint, Some(idempotency_key), request.customize())
            .await?;
        Ok(Coupon::from(&coupon))
    }

    /// The coupon `id` (chosen by whoever made it: any printable text; all but letters,
    /// digits, `_` and `-` percent-encoded).
    pub async fn retrieve_coupon(&self, id: &str) -> Result<Coupon, CallError> {
        let endpoint = "coupons.retrieve";
        if id.is_empty() || id.len() > 255 || id.chars().any(char::is_control) {
            return Err(CallError::refused(
                endpoint,
                "refusing a malformed coupon id".to_owned(),
            ));
        }
        let path = percent_encoding::utf8_percent_encode(id, PATH_SEGMENT);
        let request = RetrieveCoupon::new(path.to_string());
        let coupon = self.call(endpoint, None, request.customize()).await?;
        Ok(Coupon::from(&coupon))
    }

    /// The active promotion code `code` (Stripe matches it regardless of case), if any.
    pub async fn find_promotion_code(
        &self,
        code: &str,
    ) -> Result<Option<PromotionCode>, CallError> {
        let request = ListPromotionCode::new().code(code).active(true).limit(1i64);
        let list = self
            .call("promotion_codes.list", None, request.customize())
            .await?;
        Ok(list.data.first().map(|p| PromotionCode {
            id: p.id.to_string(),
            code: p.code.clone(),
            coupon_id: p.promotion.coupon.as_ref().map(|c| c.id().to_string()),
            customer: p.customer.as_ref().map(|c| c.id().to_string()),
            expires_at: p.expires_at,
            max_redemptions: p.max_redemptions,
            times_redeemed: p.times_redeemed,
        }))
    }

    /// The subscription with its discounts inline.
    pub async fn retrieve_with_discounts(&self, id: &str) -> Result<Subscription, CallError> {
        let path = path_id("subscriptions.retrieve", "sub_", id)?;
        let request = RetrieveSubscription::new(path).expand(vec![DISCOUNTS_EXPAND.to_owned()]);
        self.call("subscriptions.retrieve", None, request.customize())
            .await
    }

    /// Adds a discount to the subscription, keeping `change.keep`; the answer has the
    /// discounts inline.
    pub async fn add_discount(
        &self,
        idempotency_key: &str,
        subscription: &str,
        change: DiscountChange<'_>,
    ) -> Result<Subscription, CallError> {
        let path = path_id("subscriptions.update", "sub_", subscription)?;
        let request = UpdateSubscription::new(path)
            .discounts(change.params())
            .expand(vec![DISCOUNTS_EXPAND.to_owned()]);
        self.call(
            "subscriptions.update",
            Some(idempotency_key),
            request.customize(),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code() -> PromotionCode {
        PromotionCode {
            id: "promo_1".to_owned(),
            code: "SPRING".to_owned(),
            coupon_id: Some("c".to_owned()),
            customer: None,
            expires_at: None,
            max_redemptions: None,
            times_redeemed: 0,
        }
    }

    #[test]
    fn a_code_is_refused_for_another_customer_after_expiry_or_when_used_up() {
        assert_eq!(code().refusal(None, 100), None);
        let mine = PromotionCode {
            customer: Some("cus_a".to_owned()),
            ..code()
        };
        assert_eq!(mine.refusal(Some("cus_a"), 100), None);
        assert!(mine.refusal(Some("cus_b"), 100).is_some());
        assert!(mine.refusal(None, 100).is_some());
        let expired = PromotionCode {
            expires_at: Some(100),
            ..code()
        };
        assert!(expired.refusal(None, 100).is_some());
        assert_eq!(expired.refusal(None, 99), None);
        let used = PromotionCode {
            max_redemptions: Some(2),
            times_redeemed: 2,
            ..code()
        };
        assert!(used.refusal(None, 1).is_some());
    }
}
