//! What the outbound jobs share: the Stripe context, and the ordering key of a customer.
//!
//! Each job is a typed [`outbox::Job`] beside its workflow ([`super::CreateCustomer`],
//! [`super::LinkCustomer`], [`super::ExecuteAttach`], [`super::BillUsage`]); callers enqueue
//! it with [`outbox::enqueue`]. Jobs of one of our customers share the ordering key
//! `customer:{pk}`, so they run one at a time in order: ten concurrent attaches for a new
//! customer create one Stripe customer.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::catalog::Catalog;
use crate::config::{Secret, StripeSettings};
use crate::stripe::client::StripeApi;

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

/// The ordering key of a customer's jobs.
pub(super) fn ordering(customer_pk: i64) -> String {
    format!("customer:{customer_pk}")
}
