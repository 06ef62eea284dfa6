//! A customer's entities (teams, workspaces): each with its own plans and balances.

use serde::Serialize;
use utoipa::ToSchema;

use super::{BalanceView, PlanView, Time};

/// An entity: who, the feature it uses, its plans that have not ended and its balances.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct EntityView {
    pub id: String,
    pub name: Option<String>,
    pub feature_id: String,
    pub created_at: Time,
    pub products: Vec<PlanView>,
    pub balances: Vec<BalanceView>,
}

impl EntityView {
    /// Its name, else its id.
    pub(crate) fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

/// One entity with its customer's id (`GET`), and whether it existed (create's answer).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct EntityAnswer {
    #[serde(flatten)]
    pub entity: EntityView,
    pub customer_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
}

/// `GET /v1/customers/{id}/entities`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct EntityList {
    pub customer_id: String,
    pub data: Vec<EntityView>,
}

/// `DELETE /v1/customers/{id}/entities/{entity_id}`: what is left in Stripe for the
/// operator to cancel.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct EntityDeleted {
    pub id: String,
    pub customer_id: String,
    pub feature_id: String,
    pub deleted: bool,
    pub stripe_subscriptions: Vec<String>,
    pub open_checkout_sessions: Vec<String>,
}
