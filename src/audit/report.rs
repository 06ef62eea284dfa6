//! What an audit run found: per customer, the fields that differ and whether they were
//! repaired.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// What a run found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The stored run (`None` for a dry run).
    pub audit_id: Option<i64>,
    pub scope: &'static str,
    pub dry_run: bool,
    pub started_at: DateTime<Utc>,
    /// Customers compared.
    pub checked: usize,
    /// Customers skipped because work of theirs was still queued (our ids).
    pub busy: Vec<String>,
    /// Customers with at least one difference.
    pub drift: Vec<CustomerDrift>,
}

impl Report {
    pub fn differences(&self) -> usize {
        self.drift.iter().map(|c| c.differences.len()).sum()
    }
}

/// One customer's differences.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerDrift {
    /// Our id (`pk:N` for a customer without one).
    pub customer: String,
    pub stripe_id: String,
    pub differences: Vec<Difference>,
    /// Whether the store equals Stripe after the repair (false on a dry run).
    pub repaired: bool,
}

/// One field that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub field: &'static str,
    /// The subscription, for a subscription's field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    pub ours: String,
    pub stripe: String,
}
