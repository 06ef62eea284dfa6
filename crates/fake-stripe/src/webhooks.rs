//! Events: the envelope Stripe wraps around an object, and their delivery to the webhook URL.
//!
//! Events are queued while the state lock is held, so the queue order is the order in which
//! things happened. One task delivers them one at a time, in that order, each signed with
//! [`signature::sign`] at the moment of sending (unsigned if no secret is configured). A
//! delivery that fails (connection error, timeout, non-2xx) is retried with a short backoff
//! before the next event is sent; after [`ATTEMPTS`] failures it is given up and reported to
//! whoever waits on it. Until a webhook URL is given, events are only recorded.

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::state::{State, real_now};
use crate::signature;
use crate::{Delivery, WebhookSecret};

/// Tries per event before it is given up.
pub(super) const ATTEMPTS: u32 = 6;
/// Wait before retry `n` (1-based): 100 ms, 200 ms, 400 ms, ... at most 2 s.
fn backoff(retry: u32) -> Duration {
    Duration::from_millis((100u64 << (retry - 1).min(5)).min(2_000))
}
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// An event to be wrapped and sent: what happened, to which object.
pub(super) struct PendingEvent {
    pub type_: &'static str,
    pub object: Value,
    pub previous_attributes: Option<Value>,
    pub request: EventRequest,
}

impl PendingEvent {
    pub(super) fn new(type_: &'static str, object: &Value, request: &EventRequest) -> Self {
        Self {
            type_,
            object: object.clone(),
            previous_attributes: None,
            request: request.clone(),
        }
    }
}

/// The API request that caused an event; both `None` for automatic changes.
#[derive(Debug, Clone, Default)]
pub(super) struct EventRequest {
    pub id: Option<String>,
    pub idempotency_key: Option<String>,
}

struct Job {
    body: Bytes,
    done: oneshot::Sender<Result<(), String>>,
}

/// The queue in front of the delivery task, which starts once a URL is given.
pub(super) struct Outbox {
    queue: OnceLock<mpsc::UnboundedSender<Job>>,
    secret: Option<WebhookSecret>,
    shutdown: CancellationToken,
}

/// Resolves when every event of one batch was delivered (or given up).
pub(super) struct Delivered(Vec<(String, oneshot::Receiver<Result<(), String>>)>);

impl Outbox {
    /// An outbox that records events and delivers nothing until [`Outbox::deliver_to`].
    pub(super) fn new(secret: Option<WebhookSecret>, shutdown: CancellationToken) -> Self {
        Self {
            queue: OnceLock::new(),
            secret,
            shutdown,
        }
    }

    /// Starts the delivery task: events emitted from now on go to `url`. Only one URL per
    /// outbox: a second call is an error.
    pub(super) fn deliver_to(&self, url: String) -> anyhow::Result<()> {
        let (queue, jobs) = mpsc::unbounded_channel();
        self.queue
            .set(queue)
            .map_err(|_| anyhow::anyhow!("webhooks already go to a URL"))?;
        let (secret, shutdown) = (self.secret.clone(), self.shutdown.clone());
        tokio::spawn(deliver_all(jobs, url, secret, shutdown));
        Ok(())
    }

    /// Wraps each object in an event, records it and queues it (unless delivery is
    /// [`Delivery::Drop`]); call with the state locked.
    pub(super) fn emit(&self, state: &mut State, events: Vec<PendingEvent>) -> Delivered {
        let mut waits = Vec::new();
        let queue = self
            .queue
            .get()
            .filter(|_| state.delivery == Delivery::Deliver);
        for pending in events {
            let id = state.id("evt");
            let mut data = json!({ "object": pending.object });
            if let Some(previous) = pending.previous_attributes {
                data["previous_attributes"] = previous;
            }
            let event = json!({
                "id": id, "object": "event", "api_version": state.api_version,
                "created": state.now(), "data": data, "livemode": false,
                "pending_webhooks": u8::from(queue.is_some()),
                "request": {
                    "id": pending.request.id,
                    "idempotency_key": pending.request.idempotency_key
                },
                "type": pending.type_
            });
            let body = Bytes::from(serde_json::to_vec(&event).expect("JSON values serialize"));
            state.events.push(event);
            if let Some(queue) = queue {
                let (done, wait) = oneshot::channel();
                if queue.send(Job { body, done }).is_ok() {
                    waits.push((id, wait));
                }
            }
        }
        Delivered(waits)
    }
}

impl Delivered {
    /// Waits for the batch; an error names each event that could not be delivered.
    pub(super) async fn wait(self) -> anyhow::Result<()> {
        let mut failures = Vec::new();
        for (id, wait) in self.0 {
            match wait.await {
                Ok(Ok(())) => {}
                Ok(Err(why)) => failures.push(format!("{id}: {why}")),
                Err(_) => failures.push(format!("{id}: the fake stopped before delivering it")),
            }
        }
        anyhow::ensure!(
            failures.is_empty(),
            "webhook delivery failed: {}",
            failures.join("; ")
        );
        Ok(())
    }
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

async fn deliver_all(
    mut jobs: mpsc::UnboundedReceiver<Job>,
    url: String,
    secret: Option<WebhookSecret>,
    shutdown: CancellationToken,
) {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    loop {
        let job = tokio::select! {
            _ = shutdown.cancelled() => return,
            job = jobs.recv() => match job {
                Some(job) => job,
                None => return,
            },
        };
        let result = tokio::select! {
            _ = shutdown.cancelled() => return,
            result = deliver(&client, &url, secret.as_ref(), &job.body) => result,
        };
        if let Err(why) = &result {
            tracing::warn!(%url, %why, "fake Stripe gave up a webhook delivery");
        }
        let _ = job.done.send(result);
    }
}

/// One event, retried until it is acknowledged with a 2xx or [`ATTEMPTS`] are used.
async fn deliver(
    client: &HttpClient,
    url: &str,
    secret: Option<&WebhookSecret>,
    body: &Bytes,
) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(backoff(attempt)).await;
        }
        match tokio::time::timeout(ATTEMPT_TIMEOUT, post(client, url, secret, body.clone())).await {
            Ok(Ok(status)) if status.is_success() => return Ok(()),
            Ok(Ok(status)) => last = format!("HTTP {}", status.as_u16()),
            Ok(Err(error)) => last = format!("{error:#}"),
            Err(_) => last = "timed out".to_owned(),
        }
    }
    Err(format!("{ATTEMPTS} attempts, the last: {last}"))
}

/// POSTs like Stripe: JSON body, `Stripe-Signature` computed now (as the daemon's `replay` does).
async fn post(
    client: &HttpClient,
    url: &str,
    secret: Option<&WebhookSecret>,
    body: Bytes,
) -> anyhow::Result<StatusCode> {
    let mut request = Request::post(url)
        .header("content-type", "application/json; charset=utf-8")
        .header(
            "user-agent",
            "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        );
    if let Some(secret) = secret {
        request = request.header(
            "stripe-signature",
            signature::sign(secret, real_now(), &body),
        );
    }
    let response = client
        .request(request.body(Full::new(body))?)
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    // Read the answer so the connection can be reused.
    let _ = response.into_body().collect().await;
    Ok(status)
}
