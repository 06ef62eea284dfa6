//! Outbound jobs: their kinds, keys and arguments, and how the API and handlers enqueue them.
//!
//! Jobs of one of our customers share the ordering key `customer:{pk}`, so they run one at a
//! time in order: ten concurrent attaches for a new customer create one Stripe customer.

use std::sync::Arc;

use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use crate::catalog::Catalog;
use crate::config::{Secret, StripeSettings};
use crate::engine::queue;
use crate::stripe::client::StripeApi;

pub const CREATE_CUSTOMER: &str = "stripe.create_customer";
pub const LINK_CUSTOMER: &str = "stripe.link_customer";
pub const EXECUTE_ATTACH: &str = "attach.execute";
pub const BILL_USAGE: &str = "invoice.bill_usage";

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

fn ordering(customer_pk: i64) -> String {
    format!("customer:{customer_pk}")
}

/// Creates the Stripe customer of ours now (`create_in_stripe`).
pub async fn enqueue_create_customer(
    conn: &mut PgConnection,
    customer_pk: i64,
) -> Result<bool, sqlx::Error> {
    let key = format!("{CREATE_CUSTOMER}:{customer_pk}");
    let args = json!({ "customer_pk": customer_pk });
    queue::enqueue(
        conn,
        CREATE_CUSTOMER,
        &key,
        Some(&ordering(customer_pk)),
        &args,
    )
    .await
}

/// Writes our id into an existing Stripe customer's metadata (`stripe_id` linking).
pub async fn enqueue_link_customer(
    conn: &mut PgConnection,
    customer_pk: i64,
    stripe_id: &str,
) -> Result<bool, sqlx::Error> {
    let key = format!("{LINK_CUSTOMER}:{customer_pk}:{stripe_id}");
    let args = json!({ "customer_pk": customer_pk, "stripe_id": stripe_id });
    queue::enqueue(
        conn,
        LINK_CUSTOMER,
        &key,
        Some(&ordering(customer_pk)),
        &args,
    )
    .await
}

pub async fn enqueue_attach(
    conn: &mut PgConnection,
    customer_pk: i64,
    attach_id: &str,
) -> Result<bool, sqlx::Error> {
    let key = format!("{EXECUTE_ATTACH}:{attach_id}");
    let args = json!({ "attach_id": attach_id });
    queue::enqueue(
        conn,
        EXECUTE_ATTACH,
        &key,
        Some(&ordering(customer_pk)),
        &args,
    )
    .await
}

/// The in-arrear usage of a renewal invoice's ended period.
pub async fn enqueue_bill_usage(
    conn: &mut PgConnection,
    customer_pk: i64,
    args: &serde_json::Value,
    invoice_id: &str,
) -> Result<bool, sqlx::Error> {
    let key = format!("{BILL_USAGE}:{invoice_id}");
    queue::enqueue(conn, BILL_USAGE, &key, Some(&ordering(customer_pk)), args).await
}

/// The argument `name` of a job, or a permanent error.
pub fn arg<'a>(
    args: &'a serde_json::Value,
    name: &str,
) -> Result<&'a serde_json::Value, crate::engine::JobError> {
    args.get(name)
        .filter(|v| !v.is_null())
        .ok_or_else(|| crate::engine::JobError::reject(format!("job argument `{name}` is missing")))
}
