//! Balances, and the answers of checking, tracking and editing them.

use serde::Serialize;
use utoipa::ToSchema;

use super::Time;
use crate::store::balances::Balance;

/// A balance as the view shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct BalanceView {
    pub feature_id: String,
    pub included: i64,
    pub used: i64,
    pub adjustment: i64,
    pub balance: i64,
    pub unlimited: bool,
    pub suspended: bool,
    pub next_reset_at: Option<Time>,
}

impl From<&Balance> for BalanceView {
    fn from(b: &Balance) -> Self {
        Self {
            feature_id: b.feature_id.clone(),
            included: b.included,
            used: b.used,
            adjustment: b.adjustment,
            balance: b.remaining(),
            unlimited: b.unlimited,
            suspended: b.suspended,
            next_reset_at: Time::of(b.next_reset_at),
        }
    }
}

impl BalanceView {
    pub(crate) fn all(balances: &[Balance]) -> Vec<Self> {
        balances.iter().map(Self::from).collect()
    }
}

/// `POST /v1/check`'s answer; `entity_id` and `scope` (`entity` or `customer`: whose
/// balance answered) for an entity's check.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Checked {
    pub customer_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<String>,
    pub feature_id: String,
    pub allowed: bool,
    pub balance: i64,
    pub unlimited: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<&'static str>,
    /// `plan_suspended`: granted only by a paused or unpaid plan (the balance is kept for
    /// its return).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// `POST /v1/track`'s answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Tracked {
    pub customer_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<String>,
    pub feature_id: String,
    pub balance: i64,
    pub duplicate: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<&'static str>,
}

/// `POST /v1/balances`' answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct BalanceEdited {
    pub customer_id: String,
    pub feature_id: String,
    pub balance: i64,
    pub included: i64,
    pub adjustment: i64,
    pub used: i64,
    pub next_reset_at: Option<Time>,
    pub duplicate: bool,
}

/// `GET /v1/customers/{id}/usage`'s answer: totals per bucket.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct UsageView {
    pub customer_id: String,
    pub feature_id: String,
    pub from: Time,
    pub to: Time,
    pub data: Vec<UsageBucket>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct UsageBucket {
    pub bucket: Time,
    pub total: i64,
}
