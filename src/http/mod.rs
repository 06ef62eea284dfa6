//! The HTTP server: connection handling, routing, and the `/v1` handlers in the files beside
//! it, which translate HTTP to [`crate::ops`] calls and their views to JSON. The console
//! ([`crate::console`]) is mounted at `/console`; both share [`crate::web`].
//!
//! The server takes an already-bound listener and a shutdown token. It caps concurrent
//! connections (further ones wait in the kernel's accept queue), times out slow headers and
//! bodies, and on shutdown stops accepting, lets in-flight requests finish, and returns.

mod api;
mod attach;
mod balances;
mod customers;
mod entities;
mod events;
mod health;
mod input;
mod metrics;
mod openapi;
mod plan_changes;
mod respond;
mod rewards;
mod routes;
mod webhook;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{HttpSettings, MetricsSettings, Secret};
use crate::ingest::Ingest;
use crate::web::{ApiError, BodyLimits, HttpResponse, Peer};

/// What the handlers share.
pub(crate) struct AppState {
    /// What the use cases need (the pool, the catalog, Stripe).
    pub ops: crate::ops::Ctx,
    pub ingest: Ingest,
    pub webhook_secrets: Vec<Secret>,
    pub api_token: Secret,
    pub signature_tolerance_secs: u64,
    pub http: HttpSettings,
    pub body_limits: BodyLimits,
    pub metrics: MetricsSettings,
    /// The operator console (`/console`): its own state.
    pub console: crate::console::ConsoleState,
}

/// Accepts connections until `shutdown`, then waits for open connections to finish.
pub(crate) async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(state.http.max_connections));
    let connections = TaskTracker::new();
    let header_timeout = Duration::from_millis(state.http.header_read_timeout_ms);
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = slots.clone().acquire_owned() => permit.expect("semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let service = service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(Peer(peer));
                let state = state.clone();
                async move { Ok::<_, Infallible>(route(&state, req).await) }
            });
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

async fn route(state: &AppState, req: Request<Incoming>) -> HttpResponse {
    let result = match segments(req.uri().path()) {
        Ok(segments) => dispatch(state, req, &segments).await,
        Err(e) => Err(e),
    };
    result.unwrap_or_else(ApiError::into_response)
}

/// The path's segments, each percent-decoded on its own: an id holding `/` (sent as `%2F`)
/// stays one segment, and `%20` is a space, so every id that can be created can be read.
/// A trailing `/` is an empty last segment, not nothing: a client resolves
/// `customers/C/entities/..` to `customers/C/`, which must never be `customers/C`. A `.` or
/// `..` segment (sent as is, or encoded) is refused: no path resolves upward here.
fn segments(path: &str) -> Result<Vec<String>, ApiError> {
    let path = path.strip_prefix('/').unwrap_or(path);
    path.split('/')
        .map(|segment| {
            percent_encoding::percent_decode_str(segment)
                .decode_utf8()
                .map(std::borrow::Cow::into_owned)
                .map_err(|_| ApiError::invalid("path", "is not percent-encoded UTF-8"))
                .and_then(|segment| match segment.as_str() {
                    "." | ".." => Err(ApiError::invalid("path", "has a `.` or `..` segment")),
                    _ => Ok(segment),
                })
        })
        .collect()
}

async fn dispatch(
    state: &AppState,
    req: Request<Incoming>,
    segments: &[String],
) -> Result<HttpResponse, ApiError> {
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (req.method(), segments.as_slice()) {
        (&Method::POST, ["webhooks", "stripe"]) => webhook::receive(state, req).await,
        (&Method::GET, ["healthz"]) => Ok(health::live()),
        (&Method::GET, ["readyz"]) => Ok(health::ready(state).await),
        (&Method::GET, ["metrics"]) => metrics::scrape(state, &req).await,
        (_, ["console", rest @ ..]) => Ok(crate::console::route(&state.console, req, rest).await),
        (_, ["v1", ..]) => match api::authorize(state, &req) {
            Ok(()) => api::route(state, req, &segments[1..]).await,
            Err(e) => Err(e),
        },
        (_, ["webhooks", "stripe"]) => Err(ApiError::method_not_allowed(&["POST"])),
        (_, ["healthz"] | ["readyz"] | ["metrics"]) => Err(ApiError::method_not_allowed(&["GET"])),
        _ => Err(ApiError::NoRoute),
    }
}
