//! `POST /webhooks/stripe`: read the raw body (bounded), verify, index, store, then answer.
//! Every delivery is counted by outcome; acknowledged ones also time verify-to-ack.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, StatusCode, header};
use tracing::Instrument;

use super::AppState;
use crate::ingest::Stored;
use crate::metrics::{self, Delivery};
use crate::stripe::event::Envelope;
use crate::stripe::signature;
use crate::web::{ApiError, HttpResponse, json, read_body};

pub(super) async fn receive(
    state: &AppState,
    req: Request<Incoming>,
) -> Result<HttpResponse, ApiError> {
    let (signature_header, body) = read(state, req).await.inspect_err(count_refusal)?;
    let started = Instant::now();
    let envelope = verify(state, signature_header, &body).inspect_err(count_refusal)?;
    let event_type = envelope.event_type.clone();
    let span =
        tracing::info_span!("webhook", event_id = %envelope.id, event_type = %envelope.event_type);
    let stored = state
        .ingest
        .store(envelope, body)
        .instrument(span.clone())
        .await
        .inspect_err(|_| metrics::webhook_received(Some(&event_type), Delivery::Unavailable))?;
    let duplicate = stored == Stored::Duplicate;
    let outcome = if duplicate {
        Delivery::Duplicate
    } else {
        Delivery::Stored
    };
    metrics::webhook_received(Some(&event_type), outcome);
    metrics::ingest_latency(started.elapsed());
    span.in_scope(|| tracing::debug!(duplicate, "event stored"));
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "received": true, "duplicate": duplicate }),
    ))
}

/// The `Stripe-Signature` header and the body, bounded in size and time.
async fn read(
    state: &AppState,
    req: Request<Incoming>,
) -> Result<(Option<header::HeaderValue>, Bytes), ApiError> {
    let signature_header = req.headers().get("stripe-signature").cloned();
    let body = read_body(state.body_limits, req).await?;
    Ok((signature_header, body))
}

/// Checks the signature on the raw bytes, then parses the envelope.
fn verify(
    state: &AppState,
    signature_header: Option<header::HeaderValue>,
    body: &[u8],
) -> Result<Envelope, ApiError> {
    signature::verify(
        signature_header.as_ref().map(|v| v.as_bytes()),
        body,
        &state.webhook_secrets,
        state.signature_tolerance_secs,
        unix_now(),
    )?;
    Ok(Envelope::parse(body)?)
}

/// A delivery refused before it was stored: its type is not known (or not trusted).
fn count_refusal(error: &ApiError) {
    if let ApiError::Signature(e) = error {
        metrics::signature_failure(e.code());
    }
    metrics::webhook_received(None, Delivery::Rejected);
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
