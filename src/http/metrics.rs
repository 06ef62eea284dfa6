//! `GET /metrics`: Prometheus text, with the outbox gauges read from Postgres per scrape.
//! Behind the `/v1` bearer token when `metrics.require_token` is set.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode, header};

use super::AppState;
use super::api;
use crate::metrics;
use crate::web::{ApiError, HttpResponse};
use outbox::log as events;

use crate::store::duplicates;

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(super) async fn scrape(
    state: &AppState,
    req: &Request<Incoming>,
) -> Result<HttpResponse, ApiError> {
    if state.metrics.require_token {
        api::authorize(state, req)?;
    }
    // A database outage must not hide the counters that describe it: scrape without the
    // outbox gauges instead of failing.
    let gauges = gauges(state)
        .await
        .inspect_err(|error| tracing::warn!(%error, "outbox gauges unavailable for this scrape"))
        .ok();
    let text = metrics::render(gauges.as_ref());
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, CONTENT_TYPE)
        .body(Full::new(Bytes::from(text)))
        .expect("static response parts are valid"))
}

async fn gauges(state: &AppState) -> Result<metrics::Gauges, sqlx::Error> {
    let (drift, audit_last_run) = crate::store::audits::totals(&state.ops.pool).await?;
    Ok(metrics::Gauges {
        queue: events::queue_counts(&state.ops.pool).await?,
        duplicate_subscriptions: duplicates::count(&state.ops.pool).await?,
        drift,
        audit_last_run,
    })
}
