//! The event appliers that keep the customer/plan store in sync with Stripe.
//!
//! Each applier is idempotent and runs in the claim transaction, so its effects commit
//! with the event's new state; it touches only our database (a call to Stripe is a job it
//! enqueues). Mapping Stripe objects to ours:
//! - a Stripe customer → ours by the stored `stripe_id`, else by `metadata.customer_id` on
//!   the object (the first event that maps this way links the `stripe_id`);
//! - a subscription → a plan by the Stripe price ids stored for the plan, else by
//!   `metadata.plan_id` on the subscription, else on a price.

mod checkout;
mod customer;
pub(crate) mod discount;
mod invoice;
pub(crate) mod subscription;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use outbox::{EventHandler, JobError, Outcome, Registry, StoredEvent};
use sqlx::PgConnection;

use crate::catalog::{Catalog, Plan};
use crate::store::{activity, customers, stripe_ids};
use crate::stripe::objects::Metadata;

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
    // Sourced in its first statement, which it needs to make anyway.
    for event_type in subscription::EVENT_TYPES {
        registry = registry.on_event(event_type, subscription.clone());
    }
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

/// Our customer for a Stripe object: by its Stripe customer id, else by `metadata.customer_id`
/// (linking the Stripe id on the way).
async fn resolve_customer(
    conn: &mut PgConnection,
    stripe_customer: Option<&str>,
    metadata: Option<&Metadata>,
) -> Result<Option<i64>, sqlx::Error> {
    let our_id = metadata
        .and_then(|m| m.get("customer_id"))
        .map(String::as_str);
    let found = customers::pk_by_stripe_id_or_id(conn, stripe_customer, our_id).await?;
    link_found(conn, found, stripe_customer).await
}

/// The customer found for a Stripe object (`by_stripe`: by its Stripe id), its Stripe id
/// linked when it was found by our id.
async fn link_found(
    conn: &mut PgConnection,
    found: Option<(i64, bool)>,
    stripe_customer: Option<&str>,
) -> Result<Option<i64>, sqlx::Error> {
    let Some((pk, by_stripe)) = found else {
        return Ok(None);
    };
    if !by_stripe && let Some(stripe_id) = stripe_customer {
        customers::link_stripe(conn, pk, stripe_id).await?;
    }
    Ok(Some(pk))
}

fn unknown_customer(stripe_customer: Option<&str>) -> String {
    format!(
        "{} {} (no stored stripe_id or metadata.customer_id matches)",
        customers::UNKNOWN_CUSTOMER,
        stripe_customer.unwrap_or("(none)")
    )
}

fn plan_in_metadata<'c>(catalog: &'c Catalog, metadata: &[Option<&Metadata>]) -> Option<&'c Plan> {
    metadata
        .iter()
        .flatten()
        .find_map(|m| m.get("plan_id"))
        .and_then(|id| catalog.plan(id))
}

/// The plans of Stripe prices seen before, so applying an invoice or a subscription reads
/// each price once.
///
/// The catalog sync creates each Stripe price for one plan and never gives it to another,
/// so a plan found for a price stays right, also when the catalog or the Stripe account
/// changes later (old invoices still name the plan they billed). A price not found is read
/// again next time, since a sync may store it at any moment. Only found prices are kept, so
/// the map grows with the prices the catalog ever had, not with what events carry.
#[derive(Default)]
pub(super) struct PricePlans(Mutex<HashMap<String, String>>);

impl PricePlans {
    /// The plan of `price`, else of `plan_id` in `metadata`.
    async fn resolve<'c>(
        &self,
        conn: &mut PgConnection,
        catalog: &'c Catalog,
        price: Option<&str>,
        metadata: &Metadata,
    ) -> Result<Option<&'c Plan>, sqlx::Error> {
        let prices: Vec<&str> = price.into_iter().collect();
        self.resolve_many(conn, catalog, &prices, &[Some(metadata)])
            .await
    }

    /// The plan of a subscription's `prices`, stored price ids first (the first by plan id of
    /// those a plan has), else of `plan_id` in the first `metadata` that names one.
    async fn resolve_many<'c>(
        &self,
        conn: &mut PgConnection,
        catalog: &'c Catalog,
        prices: &[&str],
        metadata: &[Option<&Metadata>],
    ) -> Result<Option<&'c Plan>, sqlx::Error> {
        let (mut plans, unknown): (Vec<String>, Vec<&str>) = {
            let known = self.known();
            let mut plans = Vec::with_capacity(prices.len());
            let mut unknown = Vec::new();
            for price in prices {
                match known.get(*price) {
                    Some(plan) => plans.push(plan.clone()),
                    None => unknown.push(*price),
                }
            }
            (plans, unknown)
        };
        // The prices not seen before, in one query; those a plan has are kept.
        if !unknown.is_empty() {
            for (price, plan) in stripe_ids::plans_of_prices(conn, &unknown).await? {
                self.known().insert(price, plan.clone());
                plans.push(plan);
            }
        }
        Ok(plans
            .into_iter()
            .min()
            .and_then(|id| catalog.plan(&id))
            .or_else(|| plan_in_metadata(catalog, metadata)))
    }

    fn known(&self) -> MutexGuard<'_, HashMap<String, String>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
