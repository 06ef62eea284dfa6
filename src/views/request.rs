//! Durable requests as their callers see them: an attach, a plan change, a reward grant
//! (each the stored row's public fields, with its customer's id and, on creation, whether
//! it repeated an earlier request).

use serde::Serialize;

use crate::store::attaches::Attach;
use crate::store::plan_changes::PlanChange;
use crate::store::reward_grants::{Grant, Offer};

/// An attach: the row, whose it is, and what it redeems.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AttachView {
    #[serde(flatten)]
    pub attach: Attach,
    pub customer_id: String,
    pub reward: Option<String>,
    pub promotion_code: Option<String>,
    pub allow_promotion_codes: bool,
    /// The customer's entity that holds the plan, if not the customer.
    pub entity_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
}

impl AttachView {
    pub(crate) fn new(attach: Attach, customer_id: &str, offer: &Offer) -> Self {
        Self {
            attach,
            customer_id: customer_id.to_owned(),
            reward: offer.reward_id.clone(),
            promotion_code: offer.promotion_code.clone(),
            allow_promotion_codes: offer.allow_promotion_codes,
            entity_id: None,
            duplicate: None,
        }
    }
}

/// An attach of a plan the customer has already: nothing was created, in Stripe or here.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct HeldAttach {
    /// The attach that got it, if one did.
    pub id: Option<String>,
    pub customer_id: String,
    pub plan_id: String,
    /// `active`, or `scheduled` for a downgrade waiting for the renewal.
    pub state: &'static str,
    pub plan_status: String,
    pub stripe_subscription_id: Option<String>,
    pub checkout_url: Option<String>,
    pub error: Option<String>,
    pub duplicate: bool,
    pub entity_id: Option<String>,
}

/// `POST /v1/attach`'s answer: an attach (new, or the one in flight), or the plan held.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(crate) enum AttachAnswer {
    Attach(AttachView),
    Held(HeldAttach),
}

impl AttachAnswer {
    pub(crate) fn id(&self) -> Option<&str> {
        match self {
            Self::Attach(a) => Some(&a.attach.id),
            Self::Held(h) => h.id.as_deref(),
        }
    }

    pub(crate) fn state(&self) -> &str {
        match self {
            Self::Attach(a) => &a.attach.state,
            Self::Held(h) => h.state,
        }
    }

    pub(crate) fn duplicate(&self) -> bool {
        match self {
            Self::Attach(a) => a.duplicate == Some(true),
            Self::Held(h) => h.duplicate,
        }
    }

    pub(crate) fn checkout_url(&self) -> Option<&str> {
        match self {
            Self::Attach(a) => a.attach.checkout_url.as_deref(),
            Self::Held(h) => h.checkout_url.as_deref(),
        }
    }

    pub(crate) fn action_url(&self) -> Option<&str> {
        match self {
            Self::Attach(a) => a.attach.action_url.as_deref(),
            Self::Held(_) => None,
        }
    }

    pub(crate) fn error(&self) -> Option<&str> {
        match self {
            Self::Attach(a) => a.attach.error.as_deref(),
            Self::Held(h) => h.error.as_deref(),
        }
    }

    pub(crate) fn set_entity(&mut self, entity_id: Option<String>) {
        match self {
            Self::Attach(a) => a.entity_id = entity_id,
            Self::Held(h) => h.entity_id = entity_id,
        }
    }
}

/// A plan change (cancel, uncancel, quantity).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PlanChangeView {
    #[serde(flatten)]
    pub change: PlanChange,
    pub customer_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
}

/// A reward grant on a live subscription.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct GrantView {
    #[serde(flatten)]
    pub grant: Grant,
    pub customer_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
}
