//! `customer.created|updated|deleted`: the link between a Stripe customer and ours, and the
//! name and email a person changed in Stripe.
//!
//! - A Stripe customer not linked yet whose `metadata.customer_id` names one of ours (made in
//!   the dashboard or by another system) links to it, and an import job brings in its
//!   subscriptions (the link itself queues again its events that were skipped for want of it).
//! - A change of name or email made in Stripe is copied into ours (newest event wins); the
//!   echo of a change we made ourselves (its request's idempotency key is one of ours,
//!   `rc-...`) is not, so a later change of ours is never undone by it. Our own change counts
//!   as of the second it was made: an event from an earlier second is older and not copied; one
//!   from the same second is settled by reading the Stripe customer after our push.
//! - A deleted Stripe customer is unlinked: our customer and its history stay, and the next
//!   billing action creates a new Stripe customer.

use outbox::{EventHandler, JobError, Outcome, StoredEvent};
use sqlx::PgConnection;

use crate::jobs::{ImportCustomer, RefreshCustomer};
use crate::store::customers::{self, ContactSync};
use crate::stripe::event::{object, request_key};
use crate::stripe::objects::Customer;

pub(super) const EVENT_TYPES: &[&str] =
    &["customer.created", "customer.updated", "customer.deleted"];

/// The idempotency keys of our own requests start with this.
const OUR_KEYS: &str = "rc-";

#[derive(Clone)]
pub(super) struct CustomerHandler {
    /// Whether a change of ours or another Stripe event from the same second as a Stripe
    /// event is settled by reading the Stripe customer (only when Stripe is configured: the
    /// job calls it).
    pub refresh_ties: bool,
}

impl EventHandler for CustomerHandler {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<Outcome, JobError> {
        let stripe: Customer = object(event)?;
        if event.event_type == "customer.deleted" || stripe.deleted {
            return Ok(match customers::unlink_stripe(conn, &stripe.id).await? {
                Some(_) => Outcome::Applied,
                None => Outcome::Skipped(format!("no customer of ours is linked to {}", stripe.id)),
            });
        }
        let ours = request_key(event).is_some_and(|k| k.starts_with(OUR_KEYS));
        let customer = match customers::by_stripe_id(conn, &stripe.id).await? {
            Some(customer) => customer,
            None => match link(conn, &stripe, ours).await? {
                Ok(customer) => customer,
                Err(reason) => return Ok(Outcome::Skipped(reason)),
            },
        };
        if ours {
            return Ok(Outcome::Applied); // the echo of our own request: nothing to copy
        }
        let sync = customers::sync_from_stripe(
            conn,
            customer.pk,
            stripe.name.as_deref(),
            stripe.email.as_deref(),
            event.created,
            false,
            self.refresh_ties,
        )
        .await?;
        Ok(match sync {
            ContactSync::Applied => Outcome::Applied,
            ContactSync::Stale => Outcome::Skipped(format!(
                "stale: a newer event for {}, or our own change, was applied already",
                stripe.id
            )),
            ContactSync::Tied => {
                if self.refresh_ties {
                    let job = RefreshCustomer {
                        customer_pk: customer.pk,
                        tied_at: event.created,
                        cause: Some(customers::contact_digest(
                            stripe.name.as_deref(),
                            stripe.email.as_deref(),
                        )),
                    };
                    outbox::enqueue(conn, &job).await?;
                }
                Outcome::Skipped(format!(
                    "tied: our own change of {}'s name or email, or another Stripe event that \
                     says otherwise, is from the same second; reading it from Stripe",
                    stripe.id
                ))
            }
        })
    }
}

/// Links the Stripe customer to ours named by its `metadata.customer_id`; unless it is one we
/// created ourselves, imports what it has. `Err` is why nothing was linked.
async fn link(
    conn: &mut PgConnection,
    stripe: &Customer,
    ours: bool,
) -> Result<Result<customers::Customer, String>, sqlx::Error> {
    let Some(our_id) = stripe.metadata.get("customer_id") else {
        return Ok(Err(format!(
            "Stripe customer {} is not linked and names no customer of ours (metadata.customer_id)",
            stripe.id
        )));
    };
    let Some(customer) = customers::by_id(conn, our_id).await? else {
        return Ok(Err(format!(
            "metadata.customer_id of {} names {our_id}, which is not a customer of ours",
            stripe.id
        )));
    };
    if !customers::link_stripe(conn, customer.pk, &stripe.id).await? {
        return Ok(Err(format!(
            "customer {our_id} is linked to another Stripe customer; {} is not linked",
            stripe.id
        )));
    }
    if !ours {
        let job = ImportCustomer {
            customer_pk: customer.pk,
            stripe_id: stripe.id.clone(),
        };
        outbox::enqueue(conn, &job).await?;
    }
    Ok(Ok(customer))
}
