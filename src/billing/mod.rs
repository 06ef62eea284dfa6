//! The billing room: outbound Stripe workflows, run as typed jobs ([`crate::jobs`]) under a
//! lease, outside any event's transaction.
//!
//! - `customers`: Stripe customers created lazily (or at once), or linked with our id.
//! - `attach`: carrying out an attach (a plan change, a subscription, a Checkout Session).
//! - `plan_change`: an operator's cancel, uncancel or quantity change.
//! - `refresh`: a subscription read from Stripe when two of its events tie in one second.
//! - `catalog_sync`: the plans' Stripe products and prices, created lazily per account.
//! - `coupons`: the rewards' Stripe coupons, created lazily per account; coupons a discount
//!   names that we do not know, read from Stripe.
//! - `reward`: a reward (or a promotion code) given to a live subscription.
//! - `usage`: in-arrear usage on renewal invoices.
//!
//! Every Stripe call has an idempotency key derived from the job, so a retried job creates
//! nothing twice. Workflows record what Stripe returned through the same path webhooks take
//! ([`crate::sync`]).

pub(crate) mod attach;
mod catalog_sync;
mod coupons;
mod customers;
pub(crate) mod plan_change;
mod refresh;
pub(crate) mod reward;
mod usage;

use std::sync::Arc;

use outbox::Registry;
use sha2::{Digest, Sha256};
use sqlx::{Postgres, Transaction};

use crate::catalog::Catalog;
use crate::config::{Secret, StripeSettings};
use crate::stripe::client::StripeApi;

/// What carrying out a durable request ([`crate::requests`]) did, uncommitted (its effects,
/// and what the request records), or why it cannot be done.
pub(crate) type Carried<D> = Result<(Transaction<'static, Postgres>, D), String>;

/// What the jobs that call Stripe share.
#[derive(Clone)]
pub struct StripeContext {
    pub api: StripeApi,
    /// A fingerprint of the Stripe account (API base and key): plans' Stripe objects are
    /// recreated when it changes.
    pub account: String,
    pub catalog: Arc<Catalog>,
}

impl StripeContext {
    /// The Stripe side, when an API key is configured.
    pub fn from_settings(
        settings: &StripeSettings,
        catalog: Arc<Catalog>,
    ) -> anyhow::Result<Option<Self>> {
        let Some(key) = settings.api_key.as_ref() else {
            return Ok(None);
        };
        let timeout = std::time::Duration::from_millis(settings.timeout_ms);
        let api = StripeApi::new(key, &settings.api_base, timeout)?;
        Ok(Some(Self {
            api,
            account: account_fingerprint(&settings.api_base, key),
            catalog,
        }))
    }
}

fn account_fingerprint(base: &str, key: &Secret) -> String {
    let digest = Sha256::digest(format!("{base}\n{}", key.expose()));
    hex::encode(&digest[..8])
}

/// Registers every billing job, run with `stripe`.
pub fn register(registry: Registry, stripe: StripeContext) -> Registry {
    use crate::jobs::{
        ApplyReward, BillUsage, ChangePlan, CreateCustomer, ExecuteAttach, FetchCoupon,
        ImportCustomer, LinkCustomer, RefreshCustomer, RefreshSubscription, SyncCustomer,
    };
    let stripe = Arc::new(stripe);
    registry
        .on_job::<CreateCustomer>(stripe.clone())
        .on_job::<LinkCustomer>(stripe.clone())
        .on_job::<ImportCustomer>(stripe.clone())
        .on_job::<SyncCustomer>(stripe.clone())
        .on_job::<RefreshCustomer>(stripe.clone())
        .on_job::<ExecuteAttach>(stripe.clone())
        .on_job::<ChangePlan>(stripe.clone())
        .on_job::<RefreshSubscription>(stripe.clone())
        .on_job::<ApplyReward>(stripe.clone())
        .on_job::<FetchCoupon>(stripe.clone())
        .on_job::<BillUsage>(stripe)
}
