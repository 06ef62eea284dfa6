//! Invoices (as the customer view lists them, and one with its lines), what is due, and
//! the discounts that apply.

use serde::Serialize;
use utoipa::ToSchema;

use super::Time;
use crate::store::discounts::DiscountRow;
use crate::store::invoices::{InvoiceRow, Line};

/// An invoice as the customer view lists it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct InvoiceSummary {
    pub stripe_id: String,
    pub status: String,
    pub total: i64,
    pub subtotal: Option<i64>,
    pub total_discount: i64,
    pub currency: String,
    pub plan_ids: Vec<String>,
    pub hosted_invoice_url: Option<String>,
    pub created_at: Time,
}

impl From<&InvoiceRow> for InvoiceSummary {
    fn from(i: &InvoiceRow) -> Self {
        Self {
            stripe_id: i.stripe_id.clone(),
            status: i.status.clone(),
            total: i.total,
            subtotal: i.subtotal,
            total_discount: i.total_discount,
            currency: i.currency.clone(),
            plan_ids: i.plan_ids.clone(),
            hosted_invoice_url: i.hosted_invoice_url.clone(),
            created_at: Time(i.created_at),
        }
    }
}

/// An open invoice of a plan not paid up, with where the customer pays it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct PaymentDue {
    pub stripe_id: String,
    pub plan_ids: Vec<String>,
    pub total: i64,
    pub currency: String,
    pub billing_reason: Option<String>,
    pub plan_status: Option<String>,
    pub hosted_invoice_url: Option<String>,
}

impl From<&InvoiceRow> for PaymentDue {
    fn from(i: &InvoiceRow) -> Self {
        Self {
            stripe_id: i.stripe_id.clone(),
            plan_ids: i.plan_ids.clone(),
            total: i.total,
            currency: i.currency.clone(),
            billing_reason: i.billing_reason.clone(),
            plan_status: i.plan_status.clone(),
            hosted_invoice_url: i.hosted_invoice_url.clone(),
        }
    }
}

/// `GET /v1/customers/{id}/invoices/{invoice_id}`: the summary, its period, lines and
/// what each discount took off.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct InvoiceDetail {
    #[serde(flatten)]
    pub summary: InvoiceSummary,
    pub customer_id: Option<String>,
    pub billing_reason: Option<String>,
    pub period_start: Option<Time>,
    pub period_end: Option<Time>,
    /// None for an invoice recorded before lines were kept.
    pub lines: Option<Vec<InvoiceLine>>,
    pub discounts: Vec<InvoiceDiscount>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct InvoiceLine {
    pub id: Option<String>,
    pub description: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub quantity: Option<i64>,
    pub period_start: Option<Time>,
    pub period_end: Option<Time>,
    pub price_id: Option<String>,
    pub plan_id: Option<String>,
    pub discount: i64,
}

impl From<&Line> for InvoiceLine {
    fn from(l: &Line) -> Self {
        Self {
            id: l.id.clone(),
            description: l.description.clone(),
            amount: l.amount,
            currency: l.currency.clone(),
            quantity: l.quantity,
            period_start: Time::of(l.period_start),
            period_end: Time::of(l.period_end),
            price_id: l.price_id.clone(),
            plan_id: l.plan_id.clone(),
            discount: l.discount,
        }
    }
}

/// What one discount took off an invoice, with its coupon and reward when known.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct InvoiceDiscount {
    pub discount_id: String,
    pub amount: i64,
    pub coupon_id: Option<String>,
    pub reward_id: Option<String>,
}

/// A discount that applies, with what it takes off (null until its coupon is known).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct DiscountView {
    pub id: String,
    pub reward_id: Option<String>,
    pub coupon_id: String,
    pub name: Option<String>,
    pub promotion_code_id: Option<String>,
    pub percent_off: Option<f64>,
    pub amount_off: Option<i64>,
    pub currency: Option<String>,
    pub duration: Option<String>,
    pub duration_in_months: Option<i32>,
    pub start: Time,
    pub end: Option<Time>,
    pub subscription_id: Option<String>,
    pub plan_id: Option<String>,
}

impl From<&DiscountRow> for DiscountView {
    fn from(d: &DiscountRow) -> Self {
        Self {
            id: d.id.clone(),
            reward_id: d.reward_id.clone(),
            coupon_id: d.coupon_id.clone(),
            name: d.name.clone(),
            promotion_code_id: d.promotion_code_id.clone(),
            percent_off: d.percent_off,
            amount_off: d.amount_off,
            currency: d.currency.clone(),
            duration: d.duration.clone(),
            duration_in_months: d.duration_in_months,
            start: Time(d.start_at),
            end: Time::of(d.end_at),
            subscription_id: d.stripe_subscription_id.clone(),
            plan_id: d.plan_id.clone(),
        }
    }
}
