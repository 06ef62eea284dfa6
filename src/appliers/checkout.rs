//! Checkout Sessions we created (a known `metadata.attach_id`; others are skipped):
//! - `checkout.session.completed` paid (`payment_status` `paid` or `no_payment_required`):
//!   the plan is activated (provisionally, until its subscription's own events arrive), the
//!   subscription linked, the attach `completed`;
//! - `checkout.session.completed` unpaid (a bank debit still processing): the attach is
//!   `awaiting_payment` on its subscription and nothing is granted;
//! - `checkout.session.async_payment_succeeded`: as a paid completion;
//! - `checkout.session.async_payment_failed`: the attach `failed`, with the reason;
//! - `checkout.session.expired`: the attach `expired`.

use std::sync::Arc;

use sqlx::PgConnection;

use crate::catalog::Catalog;
use crate::store::{attaches, customers, entities, plans};
use crate::stripe::event::object;
use crate::stripe::objects::{CheckoutSession, Expandable, timestamp};
use outbox::{EventHandler, JobError, Outcome, StoredEvent};

pub(super) const EVENT_TYPES: &[&str] = &[
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
];

#[derive(Clone)]
pub(super) struct Checkout {
    pub catalog: Arc<Catalog>,
}

/// Before the session's outcome is known.
const OPEN: &[&str] = &["pending", "checkout_required"];
/// Before the payment's outcome is known (also after an unpaid completion).
const UNSETTLED: &[&str] = &["pending", "checkout_required", "awaiting_payment"];

impl EventHandler for Checkout {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<Outcome, JobError> {
        let session: CheckoutSession = object(event)?;
        let attach_id = session.metadata.as_ref().and_then(|m| m.get("attach_id"));
        let attach = match attach_id {
            Some(id) => attaches::get(conn, id).await?,
            None => None,
        };
        let Some(attach) = attach else {
            return Ok(Outcome::Skipped(format!(
                "checkout session {} was not created by us (no known attach_id)",
                session.id
            )));
        };
        match event.event_type.as_str() {
            "checkout.session.expired" => {
                attaches::end(conn, &attach.id, OPEN, "expired", "the checkout expired").await?;
                return Ok(Outcome::Applied);
            }
            "checkout.session.async_payment_failed" => {
                let why = format!(
                    "the payment failed (checkout.session.async_payment_failed, session {})",
                    session.id
                );
                // Also after the subscription expired unpaid: the failure says why.
                let from = [UNSETTLED, &["requires_action", "expired"]].concat();
                attaches::end(conn, &attach.id, &from, "failed", &why).await?;
                return Ok(Outcome::Applied);
            }
            _ => {}
        }
        if let Some(owner) = entities::of_holder(conn, attach.customer_pk).await?
            && owner.deleted
        {
            return Ok(Outcome::Skipped(format!(
                "checkout session {} is for entity {}, which was deleted",
                session.id, owner.entity_id
            )));
        }
        if let Some(stripe_id) = session.customer.as_ref().map(Expandable::id) {
            // An entity's attach links its customer (a holder has no Stripe customer).
            let payer = entities::payer(conn, attach.customer_pk).await?;
            customers::link_stripe(conn, payer, stripe_id).await?;
        }
        let Some(plan) = self.catalog.plan(&attach.plan_id) else {
            return Err(JobError::reject(format!(
                "attach {} names plan {} which is not in the catalog",
                attach.id, attach.plan_id
            )));
        };
        let Some(subscription) = session.subscription.as_ref().map(Expandable::id) else {
            return Ok(Outcome::Skipped(format!(
                "checkout session {} has no subscription",
                session.id
            )));
        };
        if session.payment_status.as_deref() == Some("unpaid") {
            // Nothing is granted before the money arrives: the subscription's own events
            // (or async_payment_succeeded) finish the attach.
            attaches::transition(
                conn,
                &attach.id,
                OPEN,
                "awaiting_payment",
                Some(subscription),
            )
            .await?;
            attaches::follow_subscription(conn, subscription).await?;
            return Ok(Outcome::Applied);
        }
        let at = timestamp(event.created).unwrap_or_else(chrono::Utc::now);
        plans::activate_from_checkout(
            conn,
            &self.catalog,
            attach.customer_pk,
            plan,
            subscription,
            at,
        )
        .await?;
        attaches::transition(conn, &attach.id, UNSETTLED, "completed", Some(subscription)).await?;
        Ok(Outcome::Applied)
    }
}
