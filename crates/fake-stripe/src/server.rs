//! The fake's HTTP server: connections as in `http/mod.rs`, then for `/v1` the parts of
//! Stripe's request handling that clients depend on, in Stripe's order: authentication,
//! injected faults, idempotency (replay or conflict), the endpoint, the recorded request.
//! `/checkout/{id}` is the hosted page a person can pay on.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::api::{self, ApiError, Call};
use super::config::Fault;
use super::form::Form;
use super::hosted;
use super::objects::API_VERSION;
use super::shared::Fake;
use super::state::{RecordedRequest, State, StoredResponse};
use super::webhooks::EventRequest;

pub(super) type HttpResponse = Response<Full<Bytes>>;

const MAX_BODY_BYTES: usize = 1 << 20;

/// Accepts connections until `shutdown`, then lets open ones finish.
pub(super) async fn serve(listener: TcpListener, fake: Arc<Fake>, shutdown: CancellationToken) {
    let connections = TaskTracker::new();
    loop {
        let (stream, _) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "fake Stripe: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let fake = fake.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let service = service_fn(move |req| {
                let fake = fake.clone();
                async move { Ok::<_, Infallible>(route(&fake, req).await) }
            });
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10));
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
                tracing::debug!(%error, "fake Stripe: connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

async fn route(fake: &Fake, req: Request<Incoming>) -> HttpResponse {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (req.method(), segments.as_slice()) {
        (_, ["v1", rest @ ..]) => v1(fake, req, rest).await,
        (&Method::GET, ["checkout", id]) => hosted::show(fake, id),
        (&Method::POST, ["checkout", id, "complete"]) => {
            let id = (*id).to_owned();
            let form = match Limited::new(req.into_body(), MAX_BODY_BYTES)
                .collect()
                .await
            {
                Ok(body) => Form::parse(&body.to_bytes()),
                Err(_) => Form::default(),
            };
            let code = form.get("promotion_code").filter(|c| !c.trim().is_empty());
            hosted::pay(fake, &id, code.map(str::trim)).await
        }
        _ => {
            let error = ApiError::no_route(req.method().as_str(), &path);
            json(error.status, error.body("req_none").to_string().into())
        }
    }
}

/// A `/v1` request as read off the wire.
struct Parsed {
    method: String,
    path: String,
    idempotency_key: Option<String>,
    authorized: bool,
    params: Form,
}

/// What to answer.
struct Outcome {
    status: u16,
    body: Bytes,
    headers: Vec<(&'static str, String)>,
    delay: Option<Duration>,
}

impl Outcome {
    fn error(error: &ApiError, request_id: &str) -> Self {
        Self {
            status: error.status,
            body: Bytes::from(error.body(request_id).to_string()),
            headers: Vec::new(),
            delay: None,
        }
    }
}

/// One `/v1` request, answered and recorded.
async fn v1(fake: &Fake, req: Request<Incoming>, segments: &[&str]) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let method = req.method().as_str().to_owned();
    let parsed = Parsed {
        idempotency_key: header("idempotency-key"),
        authorized: header("authorization")
            .and_then(|v| v.strip_prefix("Bearer ").map(|t| !t.trim().is_empty()))
            .unwrap_or(false),
        path: req.uri().path().to_owned(),
        params: if method == "GET" {
            Form::parse(req.uri().query().unwrap_or_default().as_bytes())
        } else {
            match Limited::new(req.into_body(), MAX_BODY_BYTES)
                .collect()
                .await
            {
                Ok(body) => Form::parse(&body.to_bytes()),
                Err(_) => Form::default(),
            }
        },
        method,
    };

    let (request_id, outcome) = {
        let mut state = fake.lock();
        let request_id = state.id("req");
        let outcome = answer(fake, &mut state, &parsed, segments, &request_id);
        state.requests.push(RecordedRequest {
            method: parsed.method,
            path: parsed.path,
            idempotency_key: parsed.idempotency_key.clone(),
            form: parsed.params.into_pairs(),
            status: outcome.status,
        });
        (request_id, outcome)
    };

    if let Some(delay) = outcome.delay {
        tokio::time::sleep(delay).await;
    }
    let mut response = json(outcome.status, outcome.body);
    let headers = response.headers_mut();
    let echoed = parsed.idempotency_key.map(|k| ("idempotency-key", k));
    for (name, value) in [("request-id", request_id)]
        .into_iter()
        .chain(echoed)
        .chain(outcome.headers)
    {
        if let Ok(value) = value.parse() {
            headers.insert(name, value);
        }
    }
    response
}

/// Authentication, faults, idempotency, then the endpoint; called with the state locked.
fn answer(
    fake: &Fake,
    state: &mut State,
    req: &Parsed,
    segments: &[&str],
    request_id: &str,
) -> Outcome {
    if !req.authorized {
        return Outcome::error(&ApiError::unauthorized(), request_id);
    }
    let delay = match state.take_fault(&req.method, &req.path) {
        Some(Fault::Status500) => {
            let mut outcome = Outcome::error(&ApiError::injected_500(), request_id);
            outcome
                .headers
                .push(("stripe-should-retry", "true".to_owned()));
            return outcome;
        }
        Some(Fault::Status429) => return Outcome::error(&ApiError::rate_limited(), request_id),
        Some(Fault::Status400) => return Outcome::error(&ApiError::injected_400(), request_id),
        Some(Fault::Delay(delay)) => Some(delay),
        None => None,
    };
    // Like Stripe, keys are honoured on POST only.
    let key = req
        .idempotency_key
        .as_deref()
        .filter(|_| req.method == "POST");
    if let Some(stored) = key.and_then(|k| state.idempotent.get(k)) {
        let same = stored.method == req.method
            && stored.path == req.path
            && stored.params == req.params.fingerprint();
        let mut outcome = if same {
            Outcome {
                status: stored.status,
                body: stored.body.clone(),
                headers: vec![
                    ("idempotent-replayed", "true".to_owned()),
                    ("original-request", stored.request_id.clone()),
                ],
                delay: None,
            }
        } else {
            Outcome::error(
                &ApiError::idempotency_conflict(key.unwrap_or_default()),
                request_id,
            )
        };
        outcome.delay = delay;
        return outcome;
    }
    let call = Call {
        method: &req.method,
        segments,
        params: &req.params,
        request: EventRequest {
            id: Some(request_id.to_owned()),
            idempotency_key: key.map(str::to_owned),
        },
    };
    let mut outcome = match api::route(state, &call, &fake.base_url) {
        Ok(answer) => {
            let body = Bytes::from(answer.body.to_string());
            // Queued now, delivered in the background, as Stripe does: nobody waits here.
            drop(fake.outbox.emit(state, answer.events));
            if let Some(key) = key {
                let stored = StoredResponse {
                    method: req.method.clone(),
                    path: req.path.clone(),
                    params: req.params.fingerprint(),
                    status: 200,
                    request_id: request_id.to_owned(),
                    body: body.clone(),
                };
                state.idempotent.insert(key.to_owned(), stored);
            }
            Outcome {
                status: 200,
                body,
                headers: Vec::new(),
                delay: None,
            }
        }
        Err(error) => Outcome::error(&error, request_id),
    };
    outcome.delay = delay;
    outcome
}

fn json(status: u16, body: Bytes) -> HttpResponse {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        "application/json".parse().expect("valid"),
    );
    headers.insert("stripe-version", API_VERSION.parse().expect("valid"));
    response
}
