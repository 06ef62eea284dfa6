//! Durable requests as their callers see them: an attach, a plan change, a reward grant
//! (each the stored row's public fields, with its customer's id and, on creation, whether
//! it repeated an earlier request).

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::attaches::Attach;
use crate::store::plan_changes::PlanChange;
use crate::store::reward_grants::{Grant, Offer};

/// An attach: where it stands, whose it is, and what it redeems.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct AttachView {
    pub id: String,
    pub customer_id: String,
    /// The customer's entity that holds the plan, if not the customer.
    pub entity_id: Option<String>,
    pub plan_id: String,
    /// `pending`, `checkout_required`, `requires_action`, `awaiting_payment`, `active`,
    /// `scheduled` or `failed`.
    pub state: String,
    pub checkout_url: Option<String>,
    pub stripe_subscription_id: Option<String>,
    /// `requires_action`: where the customer completes the first payment.
    pub action_url: Option<String>,
    /// Units of the plan (seats).
    pub quantity: i32,
    pub prorate: bool,
    /// The free trial this attach gives, in days; and its end, once Stripe set it.
    pub trial_days: Option<i32>,
    pub trial_end: Option<DateTime<Utc>>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub reward: Option<String>,
    pub promotion_code: Option<String>,
    pub allow_promotion_codes: bool,
    /// On creation: whether this is an attach already in flight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
}

impl AttachView {
    pub(crate) fn new(a: Attach, customer_id: &str, offer: &Offer) -> Self {
        Self {
            id: a.id,
            customer_id: customer_id.to_owned(),
            entity_id: None,
            plan_id: a.plan_id,
            state: a.state,
            checkout_url: a.checkout_url,
            stripe_subscription_id: a.stripe_subscription_id,
            action_url: a.action_url,
            quantity: a.quantity,
            prorate: a.prorate,
            trial_days: a.trial_days,
            trial_end: a.trial_end,
            error: a.error,
            created_at: a.created_at,
            updated_at: a.updated_at,
            reward: offer.reward_id.clone(),
            promotion_code: offer.promotion_code.clone(),
            allow_promotion_codes: offer.allow_promotion_codes,
            duplicate: None,
        }
    }
}

/// An attach of a plan the customer has already: nothing was created, in Stripe or here.
#[derive(Debug, Clone, Serialize, ToSchema)]
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
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum AttachAnswer {
    Attach(AttachView),
    Held(HeldAttach),
}

impl AttachAnswer {
    pub(crate) fn id(&self) -> Option<&str> {
        match self {
            Self::Attach(a) => Some(&a.id),
            Self::Held(h) => h.id.as_deref(),
        }
    }

    pub(crate) fn state(&self) -> &str {
        match self {
            Self::Attach(a) => &a.state,
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
            Self::Attach(a) => a.checkout_url.as_deref(),
            Self::Held(h) => h.checkout_url.as_deref(),
        }
    }

    pub(crate) fn action_url(&self) -> Option<&str> {
        match self {
            Self::Attach(a) => a.action_url.as_deref(),
            Self::Held(_) => None,
        }
    }

    pub(crate) fn error(&self) -> Option<&str> {
        match self {
            Self::Attach(a) => a.error.as_deref(),
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
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct PlanChangeView {
    pub id: String,
    pub customer_id: String,
    pub plan_id: String,
    /// `cancel`, `uncancel` or `quantity`.
    pub kind: String,
    /// A cancel's moment: `period_end` or `now`.
    pub at: Option<String>,
    pub quantity: Option<i32>,
    pub prorate: bool,
    /// `pending` until the job ran, then `done` or `failed`.
    pub state: String,
    /// What a done change did: `canceled`, `ended`, `uncanceled`, `unscheduled`,
    /// `quantity`, or `unchanged` when the plan was that way already.
    pub outcome: Option<String>,
    pub error: Option<String>,
    pub stripe_subscription_id: Option<String>,
    /// Who asked: `api`, `console` or `cli`.
    pub requested_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// On creation: whether an earlier request with the same key made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
}

impl PlanChangeView {
    pub(crate) fn new(c: PlanChange, customer_id: String) -> Self {
        Self {
            id: c.id,
            customer_id,
            plan_id: c.plan_id,
            kind: c.kind,
            at: c.cancel_at,
            quantity: c.quantity,
            prorate: c.prorate,
            state: c.state,
            outcome: c.outcome,
            error: c.error,
            stripe_subscription_id: c.stripe_subscription_id,
            requested_by: c.actor,
            created_at: c.created_at,
            updated_at: c.updated_at,
            duplicate: None,
        }
    }
}

/// A reward grant on a live subscription.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct GrantView {
    pub id: String,
    pub customer_id: String,
    pub reward_id: Option<String>,
    pub promotion_code: Option<String>,
    pub plan_id: String,
    pub stripe_subscription_id: String,
    /// `pending` until the job ran, then `done` or `failed`.
    pub state: String,
    /// `applied`, or `unchanged` when the subscription had a discount from that coupon.
    pub outcome: Option<String>,
    /// The Stripe discount (`di_...`) the reward is on the subscription as.
    pub discount_id: Option<String>,
    pub error: Option<String>,
    /// Who asked: `api`, `console` or `cli`.
    pub requested_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// On creation: whether an earlier request with the same key made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
}

impl GrantView {
    pub(crate) fn new(g: Grant, customer_id: String) -> Self {
        Self {
            id: g.id,
            customer_id,
            reward_id: g.reward_id,
            promotion_code: g.promotion_code,
            plan_id: g.plan_id,
            stripe_subscription_id: g.stripe_subscription_id,
            state: g.state,
            outcome: g.outcome,
            discount_id: g.discount_id,
            error: g.error,
            requested_by: g.actor,
            created_at: g.created_at,
            updated_at: g.updated_at,
            duplicate: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The views write what the stored rows' own serialisation wrote (the API's JSON before
    /// the views existed), plus the customer's id.
    #[test]
    fn a_request_view_has_the_rows_public_fields() {
        let at = "2027-01-01T04:08:09.464915Z"
            .parse::<DateTime<Utc>>()
            .unwrap();
        let change = PlanChange {
            id: "pc_1".to_owned(),
            customer_pk: 7,
            plan_id: "pro".to_owned(),
            kind: "cancel".to_owned(),
            cancel_at: Some("now".to_owned()),
            quantity: None,
            prorate: true,
            state: "done".to_owned(),
            outcome: Some("ended".to_owned()),
            error: None,
            stripe_subscription_id: Some("sub_1".to_owned()),
            actor: "api".to_owned(),
            idempotency_key: Some("k".to_owned()),
            created_at: at,
            updated_at: at,
        };
        let mut row = serde_json::to_value(&change).unwrap();
        row["customer_id"] = "u1".into();
        let view = serde_json::to_value(PlanChangeView::new(change, "u1".to_owned())).unwrap();
        assert_eq!(view, row);
    }
}
