//! The fields of Stripe objects our handlers read, for API version 2026-09-30.
//!
//! Lenient on purpose: only what we use is required, so a new or changed field elsewhere
//! in an object never turns an authentic event into a dead letter.

use chrono::{DateTime, Utc};
use serde::Deserialize;

pub(crate) use super::fields::null_as_default;
pub use super::fields::{Expandable, List, Metadata, safe_link, timestamp};
pub use super::invoice::{
    DiscountAmount, Invoice, InvoiceLine, InvoiceParent, Period, PriceDetails, Pricing,
    SubscriptionDetails,
};

#[derive(Debug, Clone, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub customer: Expandable,
    pub status: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: Metadata,
    #[serde(default, deserialize_with = "null_as_default")]
    pub items: List<SubscriptionItem>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub cancel_at_period_end: bool,
    pub cancel_at: Option<i64>,
    pub canceled_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub start_date: Option<i64>,
    /// The end of a free trial (`trialing` until then), if it has one.
    #[serde(default)]
    pub trial_end: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SubscriptionItem {
    pub id: Option<String>,
    /// Absent from items of very old integrations and some emulators, which carry only the
    /// legacy `plan` (same id and metadata): see [`SubscriptionItem::price`].
    pub price: Option<Price>,
    pub plan: Option<Price>,
    pub quantity: Option<i64>,
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Price {
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: Metadata,
}

impl SubscriptionItem {
    /// The item's price, else its legacy `plan`.
    pub fn price(&self) -> Option<&Price> {
        self.price.as_ref().or(self.plan.as_ref())
    }
}

impl Subscription {
    /// Every item's price (or legacy plan). An item with neither cannot be read: a
    /// permanent error naming it, so the event goes to dead letters saying why.
    pub fn prices(&self) -> Result<Vec<&Price>, String> {
        self.items
            .data
            .iter()
            .enumerate()
            .map(|(n, item)| {
                item.price().ok_or_else(|| {
                    format!(
                        "subscription {}: items.data[{n}] ({}) has neither `price` nor `plan`",
                        self.id,
                        item.id.as_deref().unwrap_or("no id")
                    )
                })
            })
            .collect()
    }

    /// Billing periods live on the items in current API versions: the first item's.
    pub fn period(&self) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let item = self.items.data.first();
        (
            item.and_then(|i| i.current_period_start)
                .and_then(timestamp),
            item.and_then(|i| i.current_period_end).and_then(timestamp),
        )
    }

    /// Whether it bills (or is about to: `incomplete` waits for its first payment); a second
    /// such subscription for the same plan would bill the customer twice.
    pub fn bills(&self) -> bool {
        matches!(
            self.status.as_str(),
            "active" | "trialing" | "past_due" | "unpaid" | "incomplete" | "paused"
        )
    }

    pub fn quantity(&self) -> i32 {
        self.items
            .data
            .first()
            .and_then(|i| i.quantity)
            .unwrap_or(1)
            .clamp(0, i32::MAX as i64) as i32
    }
}

/// A Stripe customer (also a deleted one: `{id, object, deleted: true}`).
#[derive(Debug, Clone, Deserialize)]
pub struct Customer {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: Metadata,
    #[serde(default, deserialize_with = "null_as_default")]
    pub deleted: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CheckoutSession {
    pub id: String,
    pub customer: Option<Expandable>,
    pub subscription: Option<Expandable>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
    pub status: Option<String>,
    pub payment_status: Option<String>,
}

/// A subscription read from the API (async-stripe's type) in the same view as a webhook's.
impl From<&stripe_shared::Subscription> for Subscription {
    fn from(s: &stripe_shared::Subscription) -> Self {
        Self {
            id: s.id.to_string(),
            customer: Expandable::Id(s.customer.id().to_string()),
            status: s.status.as_str().to_owned(),
            metadata: s.metadata.clone(),
            items: List {
                data: s
                    .items
                    .data
                    .iter()
                    .map(|i| SubscriptionItem {
                        id: Some(i.id.to_string()),
                        price: Some(Price {
                            id: i.price.id.to_string(),
                            metadata: i.price.metadata.clone(),
                        }),
                        plan: None,
                        quantity: i.quantity.map(|q| q.min(i64::MAX as u64) as i64),
                        current_period_start: Some(i.current_period_start),
                        current_period_end: Some(i.current_period_end),
                    })
                    .collect(),
            },
            cancel_at_period_end: s.cancel_at_period_end,
            cancel_at: s.cancel_at,
            canceled_at: s.canceled_at,
            ended_at: s.ended_at,
            start_date: Some(s.start_date),
            trial_end: s.trial_end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `null` in every field read with a default (nullable in Stripe's spec, or only shown).
    #[test]
    fn null_where_a_default_applies_reads_as_the_default() {
        let sub: Subscription = serde_json::from_value(serde_json::json!({
            "id": "sub_1", "customer": "cus_1", "status": "active", "metadata": null,
            "cancel_at_period_end": null, "cancel_at": null, "canceled_at": null,
            "ended_at": null, "start_date": null, "trial_end": null,
            "items": {"data": [{"id": "si_1", "quantity": null,
                "plan": {"id": "price_1", "metadata": null}}]}
        }))
        .unwrap();
        assert!(sub.metadata.is_empty() && !sub.cancel_at_period_end);
        assert_eq!(sub.prices().unwrap()[0].id, "price_1");
        let empty: Subscription = serde_json::from_value(serde_json::json!({
            "id": "sub_2", "customer": {"id": "cus_1"}, "status": "active", "items": null
        }))
        .unwrap();
        assert!(empty.items.data.is_empty());
        let invoice: Invoice = serde_json::from_value(serde_json::json!({
            "id": "in_1", "currency": "usd", "created": 1, "total": null, "lines": {"data": null},
            "hosted_invoice_url": null,
        }))
        .unwrap();
        assert_eq!(invoice.total, 0);
        let line: InvoiceLine = serde_json::from_value(serde_json::json!({
            "metadata": null, "pricing": {"price_details": {"price": {"id": "price_1"}}}
        }))
        .unwrap();
        assert_eq!(line.price_id(), Some("price_1"));
        let customer: Customer = serde_json::from_value(
            serde_json::json!({"id": "cus_1", "metadata": null, "deleted": null}),
        )
        .unwrap();
        assert!(!customer.deleted);
    }

    #[test]
    fn only_https_links_and_loopback_http_are_kept() {
        for good in [
            "https://invoice.stripe.com/i/x",
            "http://127.0.0.1:4242/i/x",
        ] {
            assert!(safe_link(good), "{good}");
        }
        for bad in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,x",
            "http://example.com/i",
            "/relative",
            "https://",
            "",
        ] {
            assert!(!safe_link(bad), "{bad}");
        }
        let invoice: Invoice = serde_json::from_value(serde_json::json!({
            "id": "in_1", "currency": "usd", "created": 1,
            "hosted_invoice_url": "javascript:alert(document.cookie)",
        }))
        .unwrap();
        assert_eq!(invoice.hosted_invoice_url, None);
    }
}
