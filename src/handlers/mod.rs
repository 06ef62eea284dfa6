//! The event handlers that keep the customer/plan store in sync with Stripe.
//!
//! Each handler is idempotent and runs in the claim transaction, so its effects commit
//! with the event's new state. Mapping Stripe objects to ours:
//! - a Stripe customer → ours by the stored `stripe_id`, else by `metadata.customer_id` on
//!   the object (the first event that maps this way links the `stripe_id`);
//! - a subscription → a plan by the Stripe price ids stored for the plan, else by
//!   `metadata.plan_id` on the subscription, else on a price.

mod attach;
mod catalog_sync;
mod checkout;
mod customer_jobs;
mod invoice;
pub mod jobs;
pub mod objects;
pub(crate) mod subscription;
mod usage;

pub use attach::ExecuteAttach;
pub use customer_jobs::{CreateCustomer, LinkCustomer};
pub use usage::BillUsage;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sqlx::PgConnection;

use crate::catalog::{Catalog, Plan};
use crate::store::customers;
use objects::Metadata;
use outbox::Registry;

/// Every handler the daemon runs, over `catalog`; the jobs that call Stripe only when it is
/// configured.
pub fn registry(catalog: Arc<Catalog>, stripe: Option<jobs::StripeContext>) -> Registry {
    let checkout = checkout::Checkout {
        catalog: catalog.clone(),
    };
    let invoice = invoice::InvoiceHandler {
        catalog: catalog.clone(),
        bill_usage: stripe.is_some(),
        prices: Arc::default(),
    };
    let subscription = subscription::SubscriptionHandler { catalog };
    let mut registry = Registry::default()
        .on_event("customer.subscription.created", subscription.clone())
        .on_event("customer.subscription.updated", subscription.clone())
        .on_event("customer.subscription.deleted", subscription.clone());
    for event_type in [
        "customer.subscription.paused",
        "customer.subscription.resumed",
    ] {
        registry = registry.on_event(event_type, subscription.clone());
    }
    for event_type in checkout::EVENT_TYPES {
        registry = registry.on_event(event_type, checkout.clone());
    }
    for event_type in invoice::EVENT_TYPES {
        registry = registry.on_event(event_type, invoice.clone());
    }
    if let Some(stripe) = stripe {
        let stripe = Arc::new(stripe);
        registry = registry
            .on_job::<CreateCustomer>(stripe.clone())
            .on_job::<LinkCustomer>(stripe.clone())
            .on_job::<ExecuteAttach>(stripe.clone())
            .on_job::<BillUsage>(stripe);
    }
    registry
}

/// Our customer for a Stripe object: by its Stripe customer id, else by `metadata.customer_id`
/// (linking the Stripe id on the way).
async fn resolve_customer(
    conn: &mut PgConnection,
    stripe_customer: Option<&str>,
    metadata: Option<&Metadata>,
) -> Result<Option<i64>, sqlx::Error> {
    if let Some(stripe_id) = stripe_customer
        && let Some(customer) = customers::by_stripe_id(conn, stripe_id).await?
    {
        return Ok(Some(customer.pk));
    }
    let our_id = metadata.and_then(|m| m.get("customer_id"));
    let Some(customer) = (match our_id {
        Some(id) => customers::by_id(conn, id).await?,
        None => None,
    }) else {
        return Ok(None);
    };
    if let Some(stripe_id) = stripe_customer {
        customers::link_stripe(conn, customer.pk, stripe_id).await?;
    }
    Ok(Some(customer.pk))
}

fn unknown_customer(stripe_customer: Option<&str>) -> String {
    format!(
        "unknown Stripe customer {} (no stored stripe_id or metadata.customer_id matches)",
        stripe_customer.unwrap_or("(none)")
    )
}

/// The plan a set of Stripe prices belongs to: stored price ids first, then metadata.
async fn resolve_plan<'c>(
    conn: &mut PgConnection,
    catalog: &'c Catalog,
    price_ids: &[&str],
    metadata: &[Option<&Metadata>],
) -> Result<Option<&'c Plan>, sqlx::Error> {
    let stored = stored_plan(conn, price_ids).await?;
    Ok(stored
        .and_then(|id| catalog.plan(&id))
        .or_else(|| plan_in_metadata(catalog, metadata)))
}

/// The plan whose stored Stripe prices include one of `price_ids` (first by id).
async fn stored_plan(
    conn: &mut PgConnection,
    price_ids: &[&str],
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM catalog_plans
         WHERE stripe_price_id = ANY($1) OR usage_prices ?| $1
         ORDER BY id LIMIT 1",
    )
    .bind(price_ids)
    .fetch_optional(conn)
    .await
}

fn plan_in_metadata<'c>(catalog: &'c Catalog, metadata: &[Option<&Metadata>]) -> Option<&'c Plan> {
    metadata
        .iter()
        .flatten()
        .find_map(|m| m.get("plan_id"))
        .and_then(|id| catalog.plan(id))
}

/// The plans of Stripe prices seen before, so applying an invoice reads each price once.
///
/// The catalog sync creates each Stripe price for one plan and never gives it to another,
/// so a plan found for a price stays right, also when the catalog or the Stripe account
/// changes later (old invoices still name the plan they billed). A price not found is read
/// again next time, since a sync may store it at any moment. Only found prices are kept, so
/// the map grows with the prices the catalog ever had, not with what events carry.
#[derive(Default)]
pub(super) struct PricePlans(Mutex<HashMap<String, String>>);

impl PricePlans {
    /// The plan of `price`, else of `plan_id` in `metadata`: [`resolve_plan`] for one price.
    async fn resolve<'c>(
        &self,
        conn: &mut PgConnection,
        catalog: &'c Catalog,
        price: Option<&str>,
        metadata: &Metadata,
    ) -> Result<Option<&'c Plan>, sqlx::Error> {
        let mut stored = None;
        if let Some(price) = price {
            stored = self.known().get(price).cloned();
            if stored.is_none() {
                stored = stored_plan(conn, &[price]).await?;
                if let Some(id) = &stored {
                    self.known().insert(price.to_owned(), id.clone());
                }
            }
        }
        Ok(stored
            .and_then(|id| catalog.plan(&id))
            .or_else(|| plan_in_metadata(catalog, &[Some(metadata)])))
    }

    fn known(&self) -> MutexGuard<'_, HashMap<String, String>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
