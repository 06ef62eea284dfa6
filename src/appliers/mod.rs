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
    // Sourced in its first statement, which it needs to make anyway (or, applied together,
    // in the statement that writes them). One handler for all its types: a batch's
    // subscription events are applied together.
    registry = registry.on_events(subscription::EVENT_TYPES, subscription);
    for event_type in checkout::EVENT_TYPES {
        registry = registry.on_event(event_type, Sourced(checkout.clone()));
    }
    for event_type in invoice::EVENT_TYPES {
        registry = registry.on_event(event_type, Sourced(invoice.clone()));
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
