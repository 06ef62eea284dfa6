//! The fields of a Stripe invoice we read: its status and amounts, its subscription (under
//! `parent.subscription_details`), its lines and what discounts took off.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::fields::{Expandable, List, Metadata, link, null_as_default, timestamp};

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
