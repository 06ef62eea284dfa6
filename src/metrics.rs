//! Prometheus metrics: every name, its description and buckets, and one helper per fact.
//!
//! Call sites are one-liners (`metrics::webhook_received(...)`). The recorder of the
//! `metrics` crate is process-global: [`install`] sets ours up once and later calls return
//! the same handle, so any number of apps in one process (the tests) share it. The outbox
//! gauges belong to one database, not to the process: [`render`] computes them per scrape
//! from the counts the caller read, in a recorder of their own.

use std::sync::OnceLock;
use std::time::Duration;

use ::metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};
use ::metrics::{histogram, with_local_recorder};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

use outbox::log::QueueCounts;

pub const WEBHOOKS_RECEIVED: &str = "stripe_webhooks_received_total";
pub const SIGNATURE_FAILURES: &str = "stripe_webhook_signature_failures_total";
pub const INGEST_SECONDS: &str = "stripe_webhook_ingest_seconds";
pub const OUTBOX_JOBS: &str = "reconciler_outbox_jobs";
pub const OUTBOX_OLDEST_PENDING: &str = "reconciler_outbox_oldest_pending_seconds";
pub use outbox::metrics::{
    APPLY_LAG_SECONDS, DEAD_LETTERS, EVENT_PROCESSING_SECONDS, EVENTS, JOB_RETRIES,
};
pub const STRIPE_API_CALLS: &str = "stripe_api_calls_total";
pub const DUPLICATE_SUBSCRIPTIONS: &str = "reconciler_duplicate_subscriptions";
pub const EVENT_API_VERSIONS: &str = "stripe_events_by_api_version_total";
pub const CAUGHT_UP: &str = "reconciler_caught_up_events_total";
pub const DRIFT: &str = "reconciler_drift_total";
pub const AUDIT_LAST_RUN: &str = "reconciler_audit_last_run_timestamp_seconds";
pub const APPLIED_TOGETHER: &str = "reconciler_events_applied_together_total";

/// Upper bounds of the latency histograms, in seconds: 1 ms (a group commit) to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Upper bounds of the apply lag histogram, in seconds: a group commit's wait to an hour
/// (an outage's backlog, a retried event).
const LAG_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
    3600.0,
];

/// The signature failure codes, counted from zero so that `rate()` has a series at once.
const SIGNATURE_CODES: &[&str] = &[
    "missing_signature",
    "malformed_signature",
    "timestamp_out_of_tolerance",
    "no_matching_signature",
];

/// How often histogram samples are folded into buckets when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder once and describes every metric; returns its handle.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = latency_buckets(PrometheusBuilder::new()).build_recorder();
        let handle = recorder.handle();
        if ::metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will be empty");
        }
        describe();
        handle
    })
}

fn latency_buckets(builder: PrometheusBuilder) -> PrometheusBuilder {
    [
        (INGEST_SECONDS, LATENCY_BUCKETS),
        (EVENT_PROCESSING_SECONDS, LATENCY_BUCKETS),
        (APPLY_LAG_SECONDS, LAG_BUCKETS),
    ]
    .into_iter()
    .fold(builder, |b, (name, buckets)| {
        b.set_buckets_for_metric(Matcher::Full(name.to_owned()), buckets)
            .expect("the bucket list is not empty")
    })
}

fn describe() {
    describe_counter!(
        WEBHOOKS_RECEIVED,
        "Webhook deliveries by event type and outcome (stored, duplicate, rejected, unavailable)."
    );
    describe_counter!(
        SIGNATURE_FAILURES,
        "Webhook deliveries refused by signature verification, by reason code."
    );
    describe_histogram!(
        INGEST_SECONDS,
        Unit::Seconds,
        "Time from verifying a webhook to acknowledging it (verify, parse, durable store)."
    );
    outbox::metrics::describe();
    describe_counter!(
        EVENT_API_VERSIONS,
        "Verified events received (webhooks and catch-up) by their `api_version`: an endpoint \
         on another version shows here."
    );
    describe_counter!(
        CAUGHT_UP,
        "Events listed by catch-up from Stripe's Events API, by outcome (stored: a webhook \
         had not brought it; known: it was there)."
    );
    describe_counter!(
        STRIPE_API_CALLS,
        "Calls to the Stripe API by endpoint template and HTTP status (error: no response)."
    );
    describe_counter!(
        APPLIED_TOGETHER,
        "Events applied set-based with the rest of their batch's wave (the common case), by \
         applier (subscription, invoice); the others of reconciler_events_total were applied \
         one at a time."
    );
    for code in SIGNATURE_CODES {
        counter!(SIGNATURE_FAILURES, "code" => *code).absolute(0);
    }
}

/// `n` events were applied together (set-based) by `applier`.
pub fn applied_together(applier: &'static str, n: usize) {
    counter!(APPLIED_TOGETHER, "applier" => applier).increment(n as u64);
}

/// What became of one webhook delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Stored,
    Duplicate,
    /// Refused with a 4xx: bad signature, not an event, too large, too slow.
    Rejected,
    /// Answered 503: the database did not take it.
    Unavailable,
}

impl Delivery {
    fn as_str(self) -> &'static str {
        match self {
            Self::Stored => "stored",
            Self::Duplicate => "duplicate",
            Self::Rejected => "rejected",
            Self::Unavailable => "unavailable",
        }
    }
}

/// Counts a delivery; `event_type` is `None` until the body was verified and parsed.
pub fn webhook_received(event_type: Option<&str>, outcome: Delivery) {
    let event_type = event_type.unwrap_or("unknown").to_owned();
    counter!(WEBHOOKS_RECEIVED, "type" => event_type, "outcome" => outcome.as_str()).increment(1);
}

pub fn signature_failure(code: &'static str) {
    counter!(SIGNATURE_FAILURES, "code" => code).increment(1);
}

/// Verify + store latency of an acknowledged delivery.
pub fn ingest_latency(elapsed: Duration) {
    histogram!(INGEST_SECONDS).record(elapsed);
}

/// A verified event of `api_version` (`none` when it carries none).
pub fn event_api_version(api_version: Option<&str>) {
    let version = api_version.unwrap_or("none").to_owned();
    counter!(EVENT_API_VERSIONS, "api_version" => version).increment(1);
}

/// What catch-up found: `stored` new events and `known` ones.
pub fn caught_up(stored: u64, known: u64) {
    counter!(CAUGHT_UP, "outcome" => "stored").increment(stored);
    counter!(CAUGHT_UP, "outcome" => "known").increment(known);
}

/// One call to the Stripe API. `endpoint` is a template such as `POST /v1/customers/{id}`,
/// never a path with ids in it; `status` is `None` when no response arrived.
pub fn stripe_api_call(endpoint: &'static str, status: Option<u16>) {
    let status = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
    counter!(STRIPE_API_CALLS, "endpoint" => endpoint, "status" => status).increment(1);
}

/// What a scrape reads from the database: the queue and the double billing `reconcile`
/// last found.
#[derive(Debug, Clone)]
pub struct Gauges {
    pub queue: QueueCounts,
    pub duplicate_subscriptions: i64,
    /// Differences the stored audits found, by field (see [`crate::audit`]).
    pub drift: Vec<(String, i64)>,
    /// When the newest audit finished (Unix seconds), if one did.
    pub audit_last_run: Option<f64>,
}

/// The text of a scrape: the process's metrics, then the database's gauges (left out when
/// the database could not be read, rather than shown stale).
pub fn render(gauges: Option<&Gauges>) -> String {
    let mut text = install().render();
    if let Some(gauges) = gauges {
        text.push_str(&database_gauges(gauges));
    }
    text
}

/// The database's gauges in a throw-away recorder: each scrape shows its own database's
/// numbers even when several apps share the process.
fn database_gauges(gauges: &Gauges) -> String {
    let queue = &gauges.queue;
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    with_local_recorder(&recorder, || {
        describe_gauge!(OUTBOX_JOBS, "Queue rows by state, read at scrape time.");
        describe_gauge!(
            OUTBOX_OLDEST_PENDING,
            Unit::Seconds,
            "Age of the oldest pending queue row, read at scrape time (0 when none)."
        );
        for (state, n) in [
            ("pending", queue.pending),
            ("in_flight", queue.in_flight),
            ("dead", queue.dead),
        ] {
            gauge!(OUTBOX_JOBS, "state" => state).set(n as f64);
        }
        gauge!(OUTBOX_OLDEST_PENDING).set(queue.oldest_pending_secs.unwrap_or(0.0));
        describe_gauge!(
            DUPLICATE_SUBSCRIPTIONS,
            "Plans of customers that the last `reconcile` found billed by more than one live \
             Stripe subscription; anything above 0 bills a customer twice."
        );
        gauge!(DUPLICATE_SUBSCRIPTIONS).set(gauges.duplicate_subscriptions as f64);
        describe_counter!(
            DRIFT,
            "Differences between the store and Stripe found by the audit (periodic and \
             `audit`, not dry runs), by field; each was repaired unless the timeline says not."
        );
        for (field, n) in &gauges.drift {
            counter!(DRIFT, "field" => field.clone()).absolute(u64::try_from(*n).unwrap_or(0));
        }
        describe_gauge!(
            AUDIT_LAST_RUN,
            Unit::Seconds,
            "When the newest audit against Stripe finished (Unix time; 0: never)."
        );
        gauge!(AUDIT_LAST_RUN).set(gauges.audit_last_run.unwrap_or(0.0));
    });
    handle.render()
}

/// Folds histogram samples into their buckets every few seconds until `shutdown`, so that
/// memory stays bounded between scrapes.
pub async fn upkeep(shutdown: CancellationToken) {
    let handle = install();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(UPKEEP_EVERY) => handle.run_upkeep(),
        }
    }
}
