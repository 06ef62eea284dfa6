//! The Stripe API, through async-stripe, with the calls the daemon makes.
//!
//! Every call has a timeout and an explicit `Idempotency-Key` chosen by the caller from the
//! job it serves, so a retried job never creates anything twice. Errors are classified for
//! the engine: 429, 5xx, timeouts and transport errors are retryable; other 4xx and responses
//! that do not decode are permanent.

use std::collections::HashMap;
use std::time::Duration;

use outbox::JobError;
use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeError};
use stripe_client_core::StripeRequest;

use crate::secret::Secret;
use crate::stripe::ids;

pub type Metadata = HashMap<String, String>;

/// The Stripe API as the daemon uses it; cheap to clone. Its calls are in a file per
/// concept: `customers`, `catalog` (products, prices, invoice items), `subscriptions`,
/// `checkout`, `coupons` (coupons, promotion codes, discounts), `account` (events, webhook
/// endpoints).
#[derive(Clone)]
pub struct StripeApi {
    client: Client,
}

impl std::fmt::Debug for StripeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StripeApi { key: [redacted] }")
    }
}

/// A call that failed, with what the engine should do about it.
#[derive(Debug, thiserror::Error)]
#[error("Stripe {endpoint}: {message}")]
pub struct CallError {
    pub endpoint: &'static str,
    pub status: Option<u16>,
    pub message: String,
    pub retryable: bool,
    /// Stripe's error `code` (`resource_missing`, ...), when it sent one.
    pub code: Option<String>,
    /// The request parameter the error is about (`items[0][price]`, ...).
    pub param: Option<String>,
}

impl CallError {
    pub(super) fn refused(endpoint: &'static str, message: String) -> Self {
        Self {
            endpoint,
            status: None,
            message,
            retryable: false,
            code: None,
            param: None,
        }
    }

    /// Stripe does not know a price or product we sent (the account lost it, or it was
    /// made in another account): recreating the catalog's objects can help.
    pub fn lost_catalog_object(&self) -> bool {
        self.code.as_deref() == Some("resource_missing")
            && self
                .param
                .as_deref()
                .is_some_and(|p| p.contains("price") || p.contains("product"))
    }
}

/// `id` as a path segment: a Stripe id of `prefix` ([`ids::is_valid`]). Anything else is
/// refused before a request is made, so no id (also one read back from our store or from
/// Stripe) can steer a call to another path or add a query string; what passes is
/// percent-encoded all the same.
pub(super) fn path_id(endpoint: &'static str, prefix: &str, id: &str) -> Result<String, CallError> {
    if !ids::is_valid(prefix, id) {
        return Err(CallError::refused(
            endpoint,
            format!("refusing a malformed id (expected {prefix}...)"),
        ));
    }
    Ok(percent_encoding::utf8_percent_encode(id, PATH_SEGMENT).to_string())
}

/// Bytes left as they are in a path segment: letters, digits, `_` and `-`.
pub(super) const PATH_SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'_').remove(b'-');

impl From<CallError> for JobError {
    fn from(error: CallError) -> Self {
        if error.retryable {
            JobError::retryable(error)
        } else {
            JobError::permanent(error)
        }
    }
}

impl StripeApi {
    pub fn new(key: &Secret, base: &str, timeout: Duration) -> Result<Self, StripeError> {
        let client = ClientBuilder::new(key.expose())
            .url(base)
            .timeout(timeout)
            .request_strategy(RequestStrategy::Once)
            .build()?;
        Ok(Self { client })
    }

    pub(super) async fn send<R: StripeRequest>(
        &self,
        endpoint: &'static str,
        idempotency_key: Option<&str>,
        request: R,
    ) -> Result<R::Output, CallError>
    where
        R::Output: miniserde::Deserialize,
    {
        self.call(endpoint, idempotency_key, request.customize())
            .await
    }

    /// Sends a request (typed, or a raw [`stripe_client_core::RequestBuilder`] customized to
    /// its output), with the key, metrics and error classes every call has.
    pub(super) async fn call<T: miniserde::Deserialize>(
        &self,
        endpoint: &'static str,
        idempotency_key: Option<&str>,
        mut call: stripe_client_core::CustomizableStripeRequest<T>,
    ) -> Result<T, CallError> {
        if let Some(key) = idempotency_key {
            let key = IdempotencyKey::new(key)
                .map_err(|e| CallError::refused(endpoint, format!("bad idempotency key: {e}")))?;
            call = call.request_strategy(RequestStrategy::Idempotent(key));
        }
        let result = call.send(&self.client).await;
        let status = match &result {
            Ok(_) => Some(200),
            Err(StripeError::Stripe(_, status)) => Some(*status),
            Err(_) => None,
        };
        crate::metrics::stripe_api_call(endpoint, status);
        result.map_err(|error| classify(endpoint, error))
    }
}

fn classify(endpoint: &'static str, error: StripeError) -> CallError {
    let (status, retryable, message) = match &error {
        StripeError::Stripe(details, status) => {
            let retryable = *status == 429 || *status >= 500 || *status == 409;
            let message = details
                .message
                .clone()
                .unwrap_or_else(|| format!("HTTP {status}"));
            (Some(*status), retryable, message)
        }
        StripeError::Timeout => (None, true, "timed out".to_owned()),
        StripeError::ClientError(e) => (None, true, e.clone()),
        StripeError::JSONDeserialize(e) => (None, false, format!("response does not decode: {e}")),
        StripeError::ConfigError(e) => (None, false, e.clone()),
    };
    let (code, param) = match &error {
        StripeError::Stripe(details, _) => (
            details.code.as_ref().map(|c| c.as_str().to_owned()),
            details.param.clone(),
        ),
        _ => (None, None),
    };
    CallError {
        endpoint,
        status,
        message,
        retryable,
        code,
        param,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_ids_are_stripe_ids_or_refused() {
        assert_eq!(path_id("x", "cus_", "cus_Ab09_z").unwrap(), "cus_Ab09_z");
        for bad in [
            "cus_a/../../v1/subscriptions/sub_X",
            "cus_a?expand[]=x&metadata[evil]=1",
            "cus_",
            "sub_1",
            "cus_a b",
            "cus_a%2F",
            "cus_\u{0}",
            &format!("cus_{}", "a".repeat(251)),
        ] {
            let error = path_id("customers.retrieve", "cus_", bad).unwrap_err();
            assert!(!error.retryable, "{bad}");
            assert!(
                bad == "cus_" || !error.message.contains(bad),
                "the refusal does not echo input: {}",
                error.message
            );
        }
    }
}
