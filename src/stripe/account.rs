//! Account-level calls: Stripe's Events API (what `catch-up` lists) and webhook endpoints
//! (what `setup-webhook` creates and checks). Raw requests whose JSON is read as it comes:
//! an event is stored as Stripe sent it, whatever its API version.

use serde::Serialize;
use serde_json::Value;
use stripe_client_core::{RequestBuilder, StripeMethod};

use super::client::{CallError, StripeApi, path_id};

/// The API version the daemon reads (the fixtures' and the fake's).
pub const API_VERSION: &str = "2026-09-30.endive";

/// The Events API lists at most this many types per request.
const MAX_TYPES: usize = 20;

/// One page of events, newest first.
#[derive(Debug, Clone)]
pub struct EventPage {
    /// Each event as JSON.
    pub events: Vec<Value>,
    pub has_more: bool,
}

#[derive(Serialize)]
struct ListEvents<'a> {
    created: Created,
    types: &'a [&'a str],
    limit: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    starting_after: Option<&'a str>,
}

#[derive(Serialize)]
struct Created {
    gte: i64,
}

#[derive(Serialize)]
struct NewEndpoint<'a> {
    url: &'a str,
    enabled_events: &'a [&'a str],
    api_version: &'a str,
    description: &'a str,
}

#[derive(Serialize)]
struct EndpointEvents<'a> {
    enabled_events: &'a [&'a str],
}

#[derive(Serialize)]
struct Limit {
    limit: u8,
}

impl StripeApi {
    /// One page of events created at or after `since` (Unix seconds) of `types` (at most 20),
    /// newest first, after `starting_after`.
    pub async fn list_events(
        &self,
        since: i64,
        types: &[&str],
        starting_after: Option<&str>,
    ) -> Result<EventPage, CallError> {
        if types.len() > MAX_TYPES {
            return Err(CallError::refused(
                "events.list",
                format!("at most {MAX_TYPES} event types per request"),
            ));
        }
        let params = ListEvents {
            created: Created { gte: since },
            types,
            limit: 100,
            starting_after,
        };
        let request = RequestBuilder::new(StripeMethod::Get, "/events").query(&params);
        let page = self.raw("events.list", None, request).await?;
        Ok(EventPage {
            events: page["data"].as_array().cloned().unwrap_or_default(),
            has_more: page["has_more"].as_bool().unwrap_or(false),
        })
    }

    /// The account's webhook endpoints (up to 100), as JSON.
    pub async fn list_webhook_endpoints(&self) -> Result<Vec<Value>, CallError> {
        let request = RequestBuilder::new(StripeMethod::Get, "/webhook_endpoints")
            .query(&Limit { limit: 100 });
        let page = self.raw("webhook_endpoints.list", None, request).await?;
        Ok(page["data"].as_array().cloned().unwrap_or_default())
    }

    /// A new endpoint for `url`, sending `events` at [`API_VERSION`]; the answer carries its
    /// signing secret (the only time Stripe shows it).
    pub async fn create_webhook_endpoint(
        &self,
        idempotency_key: &str,
        url: &str,
        events: &[&str],
    ) -> Result<Value, CallError> {
        let form = NewEndpoint {
            url,
            enabled_events: events,
            api_version: API_VERSION,
            description: "stripe-reconciler",
        };
        let request = RequestBuilder::new(StripeMethod::Post, "/webhook_endpoints").form(&form);
        self.raw("webhook_endpoints.create", Some(idempotency_key), request)
            .await
    }

    /// Sets the event types an endpoint sends.
    pub async fn update_webhook_endpoint_events(
        &self,
        idempotency_key: &str,
        id: &str,
        events: &[&str],
    ) -> Result<Value, CallError> {
        let path = path_id("webhook_endpoints.update", "we_", id)?;
        let form = EndpointEvents {
            enabled_events: events,
        };
        let request = RequestBuilder::new(StripeMethod::Post, format!("/webhook_endpoints/{path}"))
            .form(&form);
        self.raw("webhook_endpoints.update", Some(idempotency_key), request)
            .await
    }

    /// Sends a raw request; the answer as JSON.
    async fn raw(
        &self,
        endpoint: &'static str,
        idempotency_key: Option<&str>,
        request: RequestBuilder,
    ) -> Result<Value, CallError> {
        let answer: miniserde::json::Value = self
            .call(endpoint, idempotency_key, request.customize())
            .await?;
        serde_json::from_str(&miniserde::json::to_string(&answer)).map_err(|e| {
            CallError::refused(endpoint, format!("the answer is not JSON we can read: {e}"))
        })
    }
}
