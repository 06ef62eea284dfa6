//! `checkout.session.completed` finishes our pending attach (activate the plan, link the
//! subscription, provision balances); `checkout.session.expired` expires it. Sessions we
//! did not create (no known `metadata.attach_id`) are skipped.

use std::sync::Arc;

use futures::future::BoxFuture;
use sqlx::PgConnection;

use super::objects::{CheckoutSession, Expandable, timestamp};
use crate::catalog::Catalog;
use crate::engine::{EventHandler, JobError, Outcome, StoredEvent};
use crate::store::{attaches, customers, plans};

#[derive(Clone)]
pub(super) struct Checkout {
    pub catalog: Arc<Catalog>,
}

const OPEN: &[&str] = &["pending", "checkout_required"];

impl EventHandler for Checkout {
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a StoredEvent,
    ) -> BoxFuture<'a, Result<Outcome, JobError>> {
        Box::pin(async move {
            let session: CheckoutSession = event.object()?;
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
            if event.event_type == "checkout.session.expired" {
                attaches::transition(conn, &attach.id, OPEN, "expired", None).await?;
                return Ok(Outcome::Applied);
            }
            if let Some(stripe_id) = session.customer.as_ref().map(Expandable::id) {
                customers::link_stripe(conn, attach.customer_pk, stripe_id).await?;
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
            attaches::transition(conn, &attach.id, OPEN, "completed", Some(subscription)).await?;
            Ok(Outcome::Applied)
        })
    }
}
