//! The event appliers that keep the customer/plan store in sync with Stripe.
//!
//! Each applier is idempotent and runs in the claim transaction, so its effects commit
//! with the event's new state; it touches only our database (a call to Stripe is a job it
//! enqueues). An applier parses the event, has [`crate::sync`] write the Stripe object it
//! carries into the store (subscriptions, discounts, coupons: the same path billing, the
//! audit and `reconcile` take, and the same mapping of Stripe objects to ours), and adds
//! what the event itself means (a timeline entry, an attach's checkout, usage billing).

mod checkout;
mod customer;
pub(crate) mod discount;
mod invoice;
pub(crate) mod subscription;

use std::sync::Arc;

use outbox::{EventHandler, JobError, Outcome, Registry, StoredEvent};
use sqlx::PgConnection;

use crate::catalog::Catalog;
use crate::store::activity;

/// The fewest events of a wave that the subscription applier applies together (its
/// `EventHandler::TOGETHER_FROM`; the worker gives smaller waves to `handle` one at a time).
/// The set-based statements are planned for each call (a plan cached for the session would
/// keep the table sizes of its first call), which costs more than a few events' own
/// statements; a steady stream's waves hold one or two events (measured: apply lag p50
/// ~45 ms together, ~22 ms one by one at 1,000/s), a backlog's a batch's worth. (The invoice
/// applier takes every wave together: for one invoice its statements are the one-row forms,
/// and a round trip fewer.)
const TOGETHER_FROM: usize = 4;

/// The event types the daemon applies (what a webhook endpoint must send, what catch-up
/// lists).
pub fn event_types() -> Vec<&'static str> {
    [
        subscription::EVENT_TYPES,
        checkout::EVENT_TYPES,
        invoice::EVENT_TYPES,
        customer::EVENT_TYPES,
        discount::EVENT_TYPES,
        discount::COUPON_EVENT_TYPES,
    ]
    .concat()
}

/// Registers every event applier, over `catalog`. `stripe`: Stripe is configured, so
/// renewal drafts enqueue the ended period's usage billing, a same-second tie between two
/// states of a subscription queues a read of it, and a discount from a coupon we do not know
/// queues a read of the coupon.
pub fn register(registry: Registry, catalog: Arc<Catalog>, stripe: bool) -> Registry {
    let checkout = checkout::Checkout {
        catalog: catalog.clone(),
    };
    let invoice = invoice::InvoiceHandler {
        catalog: catalog.clone(),
        bill_usage: stripe,
        prices: Arc::default(),
    };
    let subscription = subscription::SubscriptionHandler {
        catalog,
        refresh_ties: stripe,
        prices: invoice.prices.clone(),
    };
    let discount = discount::DiscountHandler {
        fetch_coupons: stripe,
    };
    let mut registry = registry;
    for event_type in customer::EVENT_TYPES {
        let handler = customer::CustomerHandler {
            refresh_ties: stripe,
        };
        registry = registry.on_event(event_type, Sourced(handler));
    }
    // Sourced in their first statement (or, applied together, in the statements that write
    // them). One handler for all of each one's types: a batch's subscription events are
    // applied together, and so are its invoice events.
    registry = registry.on_events(subscription::EVENT_TYPES, subscription);
    registry = registry.on_events(invoice::EVENT_TYPES, invoice);
    for event_type in checkout::EVENT_TYPES {
        registry = registry.on_event(event_type, Sourced(checkout.clone()));
    }
    for event_type in discount::EVENT_TYPES {
        registry = registry.on_event(event_type, Sourced(discount.clone()));
    }
    for event_type in discount::COUPON_EVENT_TYPES {
        registry = registry.on_event(event_type, Sourced(discount::CouponHandler));
    }
    registry
}

/// An applier whose changes the timeline attributes to the event (its id and `created`).
struct Sourced<H>(H);

impl<H: EventHandler> EventHandler for Sourced<H> {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<Outcome, JobError> {
        activity::set_source(conn, &event.id, Some(event.created)).await?;
        self.0.handle(conn, event).await
    }
}
