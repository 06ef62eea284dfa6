//! `POST /webhooks/stripe`: read the raw body (bounded), verify, index, store, then answer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Request, StatusCode, header};
use tracing::Instrument;

use super::AppState;
use super::error::{ApiError, HttpResponse, json};
use crate::ingest::Stored;
use crate::stripe::event::Envelope;
use crate::stripe::signature;

pub(super) async fn receive(
    state: &AppState,
    req: Request<Incoming>,
) -> Result<HttpResponse, ApiError> {
    let limit = state.http.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let signature_header = req.headers().get("stripe-signature").cloned();
    let timeout = Duration::from_millis(state.http.body_read_timeout_ms);
    let body = read_body(req.into_body(), limit, timeout).await?;

    signature::verify(
        signature_header.as_ref().map(|v| v.as_bytes()),
        &body,
        &state.webhook_secrets,
        state.signature_tolerance_secs,
        unix_now(),
    )?;
    let envelope = Envelope::parse(&body)?;
    let span =
        tracing::info_span!("webhook", event_id = %envelope.id, event_type = %envelope.event_type);
    let stored = state
        .ingest
        .store(envelope, body)
        .instrument(span.clone())
        .await?;
    span.in_scope(|| tracing::debug!(duplicate = stored == Stored::Duplicate, "event stored"));
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "received": true, "duplicate": stored == Stored::Duplicate }),
    ))
}

async fn read_body(body: Incoming, limit: usize, timeout: Duration) -> Result<Bytes, ApiError> {
    match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Err(_) => Err(ApiError::BodyTimeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::PayloadTooLarge { limit })
        }
        Ok(Err(_)) => Err(ApiError::BadBody),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
