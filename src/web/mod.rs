//! What the two front doors that speak HTTP (the `/v1` API in [`crate::http`] and the console
//! in [`crate::console`]) share, below both: the response type, a request's body read within
//! bounds, the connection's address, and errors → status, code and body in one place
//! ([`error`]). Neither front door imports the other's modules through here.

pub(crate) mod error;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, header};

use crate::config::HttpSettings;
pub(crate) use error::ApiError;

pub(crate) type HttpResponse = Response<Full<Bytes>>;

/// The address a request's connection came from (a request extension).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub std::net::SocketAddr);

/// The connection's address (the server puts it on every request).
pub(crate) fn peer<B>(req: &Request<B>) -> std::net::SocketAddr {
    req.extensions()
        .get::<Peer>()
        .map_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], 0)), |p| p.0)
}

/// How much of a body is read, and for how long (`http.max_body_bytes`,
/// `http.body_read_timeout_ms`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimits {
    pub max_bytes: usize,
    pub timeout: Duration,
}

impl BodyLimits {
    pub(crate) fn from_settings(http: &HttpSettings) -> Self {
        Self {
            max_bytes: http.max_body_bytes,
            timeout: Duration::from_millis(http.body_read_timeout_ms),
        }
    }
}

/// A request's body, bounded in size (a larger `Content-Length` is refused before reading)
/// and in time, so a client that never finishes its body cannot hold a connection slot.
/// Webhooks, `/v1` bodies and console forms are all read through this.
pub(crate) async fn read_body(
    limits: BodyLimits,
    req: Request<Incoming>,
) -> Result<Bytes, ApiError> {
    let limit = limits.max_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let body = Limited::new(req.into_body(), limit).collect();
    match tokio::time::timeout(limits.timeout, body).await {
        Err(_) => Err(ApiError::BodyTimeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::PayloadTooLarge { limit })
        }
        Ok(Err(_)) => Err(ApiError::BadBody),
    }
}

/// A JSON response.
pub(crate) fn json(status: hyper::StatusCode, body: &impl serde::Serialize) -> HttpResponse {
    let bytes = serde_json::to_vec(body).expect("JSON values serialize");
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(bytes)))
        .expect("static response parts are valid")
}
