//! Balances: what a customer may use of each feature, provisioned from their live plans,
//! consumed by `track`, read by `check`, reset by Stripe renewals or (for plans without a
//! subscription) by the clock, lazily when read.
//!
//! One concept a file: [`provision()`] (held plans → balances), resets (`reset.rs`: renewals
//! and the clock), [`edit`] (an operator's grant, set or deduct) and usage (`usage.rs`:
//! [`track`] and the usage read back). The balance itself and its reads are here.

mod edits;
mod provision;
mod reset;
mod usage;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;

pub use edits::{Edit, EditOp, Edited, edit};
pub use provision::{
    HeldPlan, ProvisionedRow, provision, provision_from, provision_many, provision_past_due,
    provision_unless_same,
};
pub use reset::reset_for_renewal;
pub use usage::{Bucket, UsageRecord, track, usage_records, usage_totals};

use reset::reset_due;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Balance {
    pub feature_id: String,
    pub included: i64,
    pub used: i64,
    pub unlimited: bool,
    pub overage_allowed: bool,
    pub next_reset_at: Option<DateTime<Utc>>,
    /// Granted only by suspended plans: usage is kept, nothing is allowed.
    pub suspended: bool,
    /// What balance edits add to `included` until the next reset (negative: deducted).
    pub adjustment: i64,
}

impl Balance {
    /// `included + adjustment - used`, saturating: a balance never wraps around to a huge
    /// credit.
    pub fn remaining(&self) -> i64 {
        self.included
            .saturating_add(self.adjustment)
            .saturating_sub(self.used)
    }

    /// May the customer use `required` more?
    pub fn allows(&self, required: i64) -> bool {
        !self.suspended && (self.unlimited || self.overage_allowed || self.remaining() >= required)
    }
}

/// The balance of one feature (after any reset that fell due), locked for the transaction.
pub async fn current(
    conn: &mut PgConnection,
    customer_pk: i64,
    feature_id: &str,
) -> Result<Option<Balance>, sqlx::Error> {
    reset_due(conn, customer_pk).await?;
    sqlx::query_as(
        "SELECT feature_id, included, used, unlimited, overage_allowed, next_reset_at, suspended,
                adjustment
         FROM balances WHERE customer_pk = $1 AND feature_id = $2 FOR UPDATE",
    )
    .bind(customer_pk)
    .bind(feature_id)
    .fetch_optional(conn)
    .await
}

/// Every balance of a customer, by feature (as stored: a clock reset falls due on read).
pub async fn all(conn: &mut PgConnection, customer_pk: i64) -> Result<Vec<Balance>, sqlx::Error> {
    sqlx::query_as(
        "SELECT feature_id, included, used, unlimited, overage_allowed, next_reset_at, suspended,
                adjustment
         FROM balances WHERE customer_pk = $1 ORDER BY feature_id",
    )
    .bind(customer_pk)
    .fetch_all(conn)
    .await
}
