//! Webhook endpoints (`/v1/webhook_endpoints`): create, retrieve, list, update, delete,
//! shaped as async-stripe's `WebhookEndpoint`. The `secret` (`whsec_...`) is in the create
//! answer only, as Stripe does. `enabled_events` must name known event types (see
//! `event_types`) or `*`. Endpoints are only objects: the fake still delivers every event to
//! its configured webhook URL, whatever endpoints say.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::api::{self, Answer, ApiError, required};
use super::event_types::EVENT_TYPES;
use super::form::{Form, MetadataUpdate};
use super::state::{State, real_now};

/// `POST /v1/webhook_endpoints`.
pub(super) fn create(state: &mut State, params: &Form) -> Result<Answer, ApiError> {
    let url = valid_url(required(params, "url")?)?;
    let enabled_events = enabled_events(params)?;
    if enabled_events.is_empty() {
        return Err(ApiError::missing_param("enabled_events"));
    }
    let api_version = match params.get("api_version").filter(|v| !v.is_empty()) {
        Some(version) if looks_like_version(version) => Some(version),
        Some(version) => {
            return Err(ApiError::invalid(
                format!("Invalid api_version: {version}"),
                Some("api_version"),
            ));
        }
        None => None,
    };
    let id = state.id("we");
    let endpoint = json!({
        "id": id, "object": "webhook_endpoint", "api_version": api_version,
        "application": null, "created": state.now(),
        "description": params.get("description").filter(|d| !d.is_empty()),
        "enabled_events": enabled_events, "livemode": false,
        "metadata": MetadataUpdate::new_object(params.metadata("metadata").as_ref()),
        "status": "enabled", "url": url
    });
    state.webhook_endpoints.insert(id.clone(), endpoint.clone());
    let mut answer = endpoint;
    answer["secret"] = json!(new_secret(&id));
    Ok(Answer::quiet(answer))
}

/// `GET /v1/webhook_endpoints`: newest first.
pub(super) fn list(state: &State, params: &Form) -> Result<Answer, ApiError> {
    let all: Vec<&Value> = state.webhook_endpoints.values().collect();
    api::page(
        &all,
        |_| true,
        params,
        "webhook endpoint",
        "/v1/webhook_endpoints",
    )
}

/// `POST /v1/webhook_endpoints/{id}`: `url`, `enabled_events`, `disabled`, `description`,
/// `metadata`; `api_version` cannot be changed (400, as Stripe).
pub(super) fn update(state: &mut State, params: &Form, id: &str) -> Result<Answer, ApiError> {
    if !state.webhook_endpoints.contains_key(id) {
        return Err(ApiError::no_such("webhook endpoint", id, "id"));
    }
    if params.has("api_version") {
        return Err(ApiError {
            code: Some("parameter_unknown"),
            ..ApiError::invalid(
                "Received unknown parameter: api_version",
                Some("api_version"),
            )
        });
    }
    let url = params.get("url").map(valid_url).transpose()?;
    let enabled_events = if params.has("enabled_events") {
        let events = enabled_events(params)?;
        if events.is_empty() {
            return Err(ApiError::missing_param("enabled_events"));
        }
        Some(events)
    } else {
        None
    };
    let endpoint = state.webhook_endpoints.get_mut(id).expect("checked above");
    if let Some(url) = url {
        endpoint["url"] = json!(url);
    }
    if let Some(events) = enabled_events {
        endpoint["enabled_events"] = json!(events);
    }
    if let Some(disabled) = params.get_bool("disabled") {
        endpoint["status"] = json!(if disabled { "disabled" } else { "enabled" });
    }
    if let Some(description) = params.get("description") {
        endpoint["description"] = if description.is_empty() {
            Value::Null
        } else {
            json!(description)
        };
    }
    if let Some(update) = params.metadata("metadata") {
        update.apply(&mut endpoint["metadata"]);
    }
    Ok(Answer::quiet(endpoint.clone()))
}

/// `DELETE /v1/webhook_endpoints/{id}`.
pub(super) fn delete(state: &mut State, id: &str) -> Result<Answer, ApiError> {
    state
        .webhook_endpoints
        .remove(id)
        .ok_or_else(|| ApiError::no_such("webhook endpoint", id, "id"))?;
    Ok(Answer::quiet(
        json!({"id": id, "object": "webhook_endpoint", "deleted": true}),
    ))
}

/// `enabled_events[]`, each a known event type or `*`.
fn enabled_events(params: &Form) -> Result<Vec<&str>, ApiError> {
    let events = params.values("enabled_events");
    for (i, event) in events.iter().enumerate() {
        if *event != "*" && !EVENT_TYPES.contains(event) {
            let param = format!("enabled_events[{i}]");
            return Err(ApiError::invalid(
                format!(
                    "Invalid {param}: must be one of the event types Stripe sends, or * (got '{event}')."
                ),
                Some(&param),
            ));
        }
    }
    Ok(events)
}

fn valid_url(url: &str) -> Result<&str, ApiError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    if rest.is_none_or(|host| host.is_empty() || host.starts_with('/')) {
        return Err(ApiError::invalid(
            format!(
                "Invalid URL: {url}. A webhook endpoint URL must start with https:// or http:// and name a host."
            ),
            Some("url"),
        ));
    }
    Ok(url)
}

/// `2026-09-30` or `2026-09-30.endive`.
fn looks_like_version(version: &str) -> bool {
    let (date, name) = version.split_once('.').unwrap_or((version, "a"));
    let digits = date.bytes().filter(u8::is_ascii_digit).count();
    date.len() == 10
        && digits == 8
        && date.as_bytes()[4] == b'-'
        && date.as_bytes()[7] == b'-'
        && !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_lowercase())
}

/// A signing secret no other endpoint has: `whsec_` and 32 hex digits.
fn new_secret(id: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(id.as_bytes());
    hash.update(real_now().to_le_bytes());
    hash.update(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            .to_le_bytes(),
    );
    format!("whsec_{}", &hex::encode(hash.finalize())[..32])
}
