//! A customer (its whole view, and as the list shows it), and an event as the API shows it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{BalanceView, DiscountView, EntityView, InvoiceSummary, PaymentDue, PlanView, Time};
use crate::store::customers::Listed;

/// The customer as the API shows it: its fields, the plans that have not ended
/// (`products`) and those that did (`ended_products`), balances, entities, invoices, what
/// is due (`payment_due`: open invoices of plans not paid up) and the discounts that apply.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct CustomerView {
    pub id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub fingerprint: Option<String>,
    pub stripe_id: Option<String>,
    /// The caller's own JSON object, kept as given.
    pub metadata: serde_json::Value,
    pub products: Vec<PlanView>,
    pub ended_products: Vec<PlanView>,
    pub balances: Vec<BalanceView>,
    pub entities: Vec<EntityView>,
    pub invoices: Vec<InvoiceSummary>,
    pub discounts: Vec<DiscountView>,
    pub payment_due: Vec<PaymentDue>,
}

/// A customer as the list shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct ListedCustomer {
    pub id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub plans: Vec<PlanStatus>,
    pub created_at: Time,
}

/// A plan that has not ended, and its status.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct PlanStatus {
    pub plan_id: String,
    pub status: String,
}

impl From<&Listed> for ListedCustomer {
    fn from(c: &Listed) -> Self {
        Self {
            id: c.id.clone(),
            name: c.name.clone(),
            email: c.email.clone(),
            plans: c
                .plans
                .iter()
                .map(|(plan_id, status)| PlanStatus {
                    plan_id: plan_id.clone(),
                    status: status.clone(),
                })
                .collect(),
            created_at: Time(c.created_at),
        }
    }
}

/// `DELETE /v1/customers/{id}`'s answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct CustomerDeleted {
    pub id: String,
    pub deleted: bool,
}

/// The public shape of a Stripe event we received: what happened to it, not where it came
/// from (`GET /v1/events/{id}`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct EventView {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub created: i64,
    pub received_at: DateTime<Utc>,
    pub state: String,
    pub attempts: i32,
    pub last_error: Option<String>,
}

impl From<outbox::log::EventRecord> for EventView {
    fn from(e: outbox::log::EventRecord) -> Self {
        Self {
            id: e.id,
            event_type: e.event_type,
            created: e.created,
            received_at: e.received_at,
            state: e.state,
            attempts: e.attempts,
            last_error: e.last_error,
        }
    }
}
