//! The fields of discounts and coupons we read (API version 2026-09-30, and the older shape
//! that embedded the coupon), lenient like [`super::objects`].

use serde::Deserialize;

use super::objects::{Expandable, Metadata};

/// A discount: a coupon redeemed on a subscription (or a customer).
#[derive(Debug, Clone, Deserialize)]
pub struct Discount {
    pub id: String,
    pub customer: Option<Expandable>,
    /// Since 2025-09-30: `{coupon, type: "coupon"}`, the coupon as an id.
    #[serde(default)]
    pub source: Option<DiscountSource>,
    /// Before 2025-09-30: the coupon itself.
    #[serde(default)]
    pub coupon: Option<CouponRef>,
    pub promotion_code: Option<Expandable>,
    pub start: i64,
    pub end: Option<i64>,
    pub subscription: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DiscountSource {
    pub coupon: Option<CouponRef>,
}

/// A coupon named by its id, or embedded.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum CouponRef {
    Id(String),
    Object(Box<Coupon>),
}

impl CouponRef {
    pub fn id(&self) -> &str {
        match self {
            Self::Id(id) => id,
            Self::Object(coupon) => &coupon.id,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Coupon {
    pub id: String,
    pub name: Option<String>,
    pub percent_off: Option<f64>,
    pub amount_off: Option<i64>,
    pub currency: Option<String>,
    pub duration: Option<String>,
    pub duration_in_months: Option<i64>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
    #[serde(default, deserialize_with = "super::objects::null_as_default")]
    pub deleted: bool,
}

impl Discount {
    fn coupon_ref(&self) -> Option<&CouponRef> {
        self.source
            .as_ref()
            .and_then(|s| s.coupon.as_ref())
            .or(self.coupon.as_ref())
    }

    /// The coupon it was redeemed from.
    pub fn coupon_id(&self) -> Option<&str> {
        self.coupon_ref().map(CouponRef::id)
    }

    /// The coupon, when the payload embeds it (older API versions, or expanded).
    pub fn coupon(&self) -> Option<&Coupon> {
        match self.coupon_ref()? {
            CouponRef::Object(coupon) => Some(coupon),
            CouponRef::Id(_) => None,
        }
    }
}

impl Coupon {
    /// `metadata.reward_id`: the catalog reward we made it for.
    pub fn reward_id(&self) -> Option<&str> {
        self.metadata.as_ref()?.get("reward_id").map(String::as_str)
    }
}

/// A discount read from the API (async-stripe's type) in the same view as a webhook's.
impl From<&stripe_shared::Discount> for Discount {
    fn from(d: &stripe_shared::Discount) -> Self {
        let coupon = d.source.coupon.as_ref().map(|c| match c {
            stripe_types::Expandable::Id(id) => CouponRef::Id(id.to_string()),
            stripe_types::Expandable::Object(c) => CouponRef::Object(Box::new(Coupon::from(&**c))),
        });
        Self {
            id: d.id.to_string(),
            customer: d
                .customer
                .as_ref()
                .map(|c| Expandable::Id(c.id().to_string())),
            source: Some(DiscountSource { coupon }),
            coupon: None,
            promotion_code: d
                .promotion_code
                .as_ref()
                .map(|p| Expandable::Id(p.id().to_string())),
            start: d.start,
            end: d.end,
            subscription: d.subscription.clone(),
        }
    }
}

impl From<&stripe_shared::Coupon> for Coupon {
    fn from(c: &stripe_shared::Coupon) -> Self {
        Self {
            id: c.id.to_string(),
            name: c.name.clone(),
            percent_off: c.percent_off,
            amount_off: c.amount_off,
            currency: c.currency.as_ref().map(|c| c.to_string()),
            duration: Some(c.duration.as_str().to_owned()),
            duration_in_months: c.duration_in_months,
            metadata: c.metadata.clone(),
            deleted: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_coupon_of_either_shape() {
        let now: Discount = serde_json::from_str(
            r#"{"id":"di_1","object":"discount","customer":"cus_1","end":null,
                "promotion_code":"promo_1","source":{"coupon":"SPRING","type":"coupon"},
                "start":1,"subscription":"sub_1"}"#,
        )
        .unwrap();
        assert_eq!(now.coupon_id(), Some("SPRING"));
        assert!(now.coupon().is_none());
        let old: Discount = serde_json::from_str(
            r#"{"id":"di_2","customer":"cus_1","start":1,"end":null,"subscription":null,
                "promotion_code":null,
                "coupon":{"id":"OLD","percent_off":10,"duration":"once","metadata":{}}}"#,
        )
        .unwrap();
        assert_eq!(old.coupon_id(), Some("OLD"));
        assert_eq!(old.coupon().unwrap().percent_off, Some(10.0));
    }
}
