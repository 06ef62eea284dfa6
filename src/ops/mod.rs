//! The use cases: what the API, the console and the CLI do, once. Each takes a [`Ctx`] (the
//! pool, the catalog, Stripe) and typed input ([`crate::domain`]), and answers a typed view
//! ([`crate::views`]) or an [`Error`]. The front doors only translate: HTTP, forms or argv
//! into these calls, their answers into JSON, HTML or text.
//!
//! - [`customers`]: get-or-create, read, update (and link to Stripe), delete.
//! - [`search`]: the customer list (search, plan and status filters, pages).
//! - [`balances`]: check, track, edit a balance; [`usage`]: usage totals and records.
//! - [`invoices`]: one invoice with its lines and discounts.
//! - [`entities`]: a customer's entities, and the entity side of check, track and attach.
//! - [`attach`], [`plan_changes`], [`rewards`]: durable requests carried out by the outbox
//!   (through [`crate::changes`], [`crate::rewards`] and [`crate::pending`]), waited for
//!   briefly.
//! - [`timeline`]: what happened to a customer; [`events`]: a Stripe event's state.

pub(crate) mod attach;
pub(crate) mod balances;
pub(crate) mod customers;
pub(crate) mod entities;
mod error;
pub(crate) mod events;
pub(crate) mod invoices;
pub(crate) mod plan_changes;
pub(crate) mod rewards;
pub(crate) mod search;
pub(crate) mod timeline;
pub(crate) mod usage;

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;

use crate::catalog::Catalog;
pub(crate) use error::{Error, IDEMPOTENCY_ERROR, Result};
pub(crate) use error::{customer_not_found, feature_not_found, plan_not_found};

/// What the use cases need: the database, the catalog, and Stripe.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub pool: PgPool,
    pub catalog: Arc<Catalog>,
    /// Whether requests that Stripe carries out (attaches, plan changes, grants) can be
    /// recorded: a Stripe key is configured here, or (the CLI) the daemon's workers have one.
    pub stripe_enabled: bool,
    /// Stripe, for what a request needs answered before it is recorded (a promotion code's
    /// lookup); everything else goes through jobs.
    pub stripe_api: Option<crate::stripe::client::StripeApi>,
    /// How long a durable request is waited for before answering that it is pending.
    pub wait: Duration,
}

/// Who made a change through the API (one API token, so one label).
pub(crate) const API_ACTOR: &str = "api";

/// A durable request's outcome as its caller gets it: the view, whether an earlier request
/// with the same key answered, and whether it is still pending after the wait.
#[derive(Debug)]
pub(crate) struct Requested<T> {
    pub view: T,
    pub duplicate: bool,
    pub pending: bool,
}

/// The feature, if the catalog has it.
pub(crate) fn known_feature(catalog: &Catalog, id: &str) -> Result<()> {
    match catalog.feature(id) {
        Some(_) => Ok(()),
        None => Err(feature_not_found(id)),
    }
}

/// The customer `id`, else `customer_not_found`.
pub(crate) async fn find(
    conn: &mut sqlx::PgConnection,
    id: &str,
) -> Result<crate::store::customers::Customer> {
    crate::store::customers::by_id(conn, id)
        .await?
        .ok_or_else(|| customer_not_found(id))
}
