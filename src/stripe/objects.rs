//! The fields of Stripe objects our handlers read, for API version 2026-09-30.
//!
//! Lenient on purpose: only what we use is required, so a new or changed field elsewhere
//! in an object never turns an authentic event into a dead letter.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

pub type Metadata = HashMap<String, String>;

/// `null` read as the default, as absent is: where Stripe's spec says nullable, and where a
/// field we only use for display could be. Used on every defaulted field, so `null` never
/// makes an event dead.
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// An id, or the expanded object carrying it.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Expandable {
    Id(String),
    Object { id: String },
}

impl Expandable {
    pub fn id(&self) -> &str {
        match self {
            Self::Id(id) | Self::Object { id } => id,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct List<T> {
    #[serde(default, deserialize_with = "null_as_default")]
    pub data: Vec<T>,
}

impl<T> Default for List<T> {
    fn default() -> Self {
        Self { data: Vec::new() }
    }
}

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

#[derive(Debug, Clone, Deserialize)]
pub struct Invoice {
    pub id: String,
    pub customer: Option<Expandable>,
    pub status: Option<String>,
    pub billing_reason: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub total: i64,
    pub currency: String,
    /// Only a link a browser may follow: see [`safe_link`].
    #[serde(default, deserialize_with = "link")]
    pub hosted_invoice_url: Option<String>,
    pub created: i64,
    pub period_start: Option<i64>,
    pub period_end: Option<i64>,
    pub parent: Option<InvoiceParent>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub lines: List<InvoiceLine>,
    /// Before discounts.
    pub subtotal: Option<i64>,
    /// What each discount took off.
    #[serde(default)]
    pub total_discount_amounts: Option<Vec<DiscountAmount>>,
}

/// What one discount took off an invoice or a line.
#[derive(Debug, Clone, Deserialize)]
pub struct DiscountAmount {
    pub amount: i64,
    pub discount: Expandable,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InvoiceParent {
    pub subscription_details: Option<SubscriptionDetails>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SubscriptionDetails {
    pub subscription: Option<Expandable>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
}

/// A line of an invoice (`line_item`): what it bills, for which period, at which price.
#[derive(Debug, Clone, Deserialize)]
pub struct InvoiceLine {
    pub id: Option<String>,
    pub description: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub quantity: Option<i64>,
    pub period: Option<Period>,
    pub pricing: Option<Pricing>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub metadata: Metadata,
    #[serde(default)]
    pub discount_amounts: Option<Vec<DiscountAmount>>,
}

/// `(discount id, amount)` of each entry.
fn amounts(list: Option<&[DiscountAmount]>) -> Vec<(String, i64)> {
    list.unwrap_or_default()
        .iter()
        .map(|a| (a.discount.id().to_owned(), a.amount))
        .collect()
}

impl InvoiceLine {
    /// What discounts took off the line, saturating.
    pub fn discount(&self) -> i64 {
        amounts(self.discount_amounts.as_deref())
            .iter()
            .fold(0i64, |sum, (_, a)| sum.saturating_add(*a))
    }

    /// The line's price, at `pricing.price_details.price` (2025-03-31 and later).
    pub fn price_id(&self) -> Option<&str> {
        self.pricing
            .as_ref()?
            .price_details
            .as_ref()
            .map(|d| d.price.id())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Period {
    pub start: i64,
    pub end: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Pricing {
    pub price_details: Option<PriceDetails>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PriceDetails {
    /// An id, or the price when the request expanded it.
    pub price: Expandable,
}

impl Invoice {
    /// What each discount took off the invoice, by discount id.
    pub fn discount_amounts(&self) -> Vec<(String, i64)> {
        amounts(self.total_discount_amounts.as_deref())
    }

    /// The subscription, at `parent.subscription_details.subscription` (2025-03-31 and later).
    pub fn subscription_id(&self) -> Option<&str> {
        self.parent
            .as_ref()?
            .subscription_details
            .as_ref()?
            .subscription
            .as_ref()
            .map(Expandable::id)
    }

    /// The subscription's metadata as copied onto the invoice.
    pub fn subscription_metadata(&self) -> Option<&Metadata> {
        self.parent
            .as_ref()?
            .subscription_details
            .as_ref()?
            .metadata
            .as_ref()
    }

    /// The service period the invoice bills: its lines' (a renewal's own
    /// `period_start/end` cover the period that ended).
    pub fn service_period_end(&self) -> Option<DateTime<Utc>> {
        self.lines
            .data
            .iter()
            .filter_map(|l| l.period.as_ref().map(|p| p.end))
            .max()
            .and_then(timestamp)
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

/// Whether a URL from Stripe's data may become a link (the console's, an attach's
/// `action_url`): `https`, or `http` to a loopback host (the fake Stripe of tests and
/// development). Anything else (`javascript:`, `data:`, a relative path) is dropped.
pub fn safe_link(url: &str) -> bool {
    let Ok(uri) = url.parse::<hyper::Uri>() else {
        return false;
    };
    let host = uri.host().unwrap_or_default();
    match uri.scheme_str() {
        Some("https") => !host.is_empty(),
        Some("http") => matches!(host, "127.0.0.1" | "localhost" | "[::1]"),
        _ => false,
    }
}

/// An optional link, kept only when [`safe_link`].
fn link<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.filter(|url| safe_link(url)))
}

pub fn timestamp(secs: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(secs, 0)
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
