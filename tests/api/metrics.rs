//! `GET /metrics`: counters move with traffic, the outbox gauges are this app's database,
//! and the optional bearer token.
//!
//! The recorder is process-wide and other tests run at the same time: counters of shared
//! labels are compared as "moved by at least"; labels unique to a test are compared exactly.

use std::collections::BTreeMap;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode, header};
use outbox::{EventHandler, JobError, Outcome, Registry, StoredEvent};
use sqlx::PgConnection;
use stripe_reconciler::config::Secret;
use stripe_reconciler::stripe::signature;

use crate::helpers::*;

/// A scrape: 200, Prometheus text.
async fn scrape(app: &TestApp) -> Scrape {
    let req = Request::get(app.url("/metrics"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = app.client.request(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Scrape(String::from_utf8(body.to_vec()).unwrap())
}

struct Scrape(String);

impl Scrape {
    /// The sum of the samples of `name` that carry every label in `labels` (0 if none).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(parse_sample)
            .filter(|(n, l, _)| *n == name && labels.iter().all(|(k, v)| l.get(*k) == Some(v)))
            .map(|(_, _, value)| value)
            .sum()
    }

    fn has(&self, name: &str) -> bool {
        self.0
            .lines()
            .filter_map(parse_sample)
            .any(|(n, _, _)| n == name)
    }
}

/// `name{k="v",...} value` → (name, labels, value). Our label values hold no `,` or `"`.
fn parse_sample(line: &str) -> Option<(&str, BTreeMap<&str, &str>, f64)> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = value.parse().ok()?;
    let Some((name, labels)) = series.split_once('{') else {
        return Some((series, BTreeMap::new(), value));
    };
    let labels = labels
        .strip_suffix('}')?
        .split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((k, v.trim_matches('"')))
        })
        .collect();
    Some((name, labels, value))
}

fn fixture_types() -> Vec<(Vec<u8>, String)> {
    fixture_files()
        .into_iter()
        .map(|file| {
            let body = std::fs::read(file).unwrap();
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let event_type = json["type"].as_str().unwrap().to_owned();
            (body, event_type)
        })
        .collect()
}

fn unique_type(what: &str) -> String {
    format!("test.{what}_{:08x}", rand::random::<u32>())
}

#[tokio::test]
async fn replayed_fixtures_move_the_counters_and_the_outbox_gauges() {
    let app = TestApp::spawn().await;
    let fixtures = fixture_types();
    let own_type = unique_type("metrics");
    let before = scrape(&app).await;

    for (body, _) in &fixtures {
        let (status, answer) = app.post_event(body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let own = event("evt_metrics_own", &own_type, "cus_metrics");
    assert_eq!(app.post_event(&own).await.0, StatusCode::OK);
    assert_eq!(app.post_event(&own).await.0, StatusCode::OK); // a redelivery
    let stored = scrape(&app).await;

    let received = "stripe_webhooks_received_total";
    for (_, t) in &fixtures {
        let labels = [("type", t.as_str()), ("outcome", "stored")];
        let moved = stored.value(received, &labels) - before.value(received, &labels);
        assert!(moved >= 1.0, "{t} stored: {moved}");
    }
    for (outcome, expected) in [("stored", 1.0), ("duplicate", 1.0)] {
        let labels = [("type", own_type.as_str()), ("outcome", outcome)];
        assert_eq!(stored.value(received, &labels), expected, "{outcome}");
    }
    let acked = stored.value("stripe_webhook_ingest_seconds_count", &[])
        - before.value("stripe_webhook_ingest_seconds_count", &[]);
    assert!(
        acked >= fixtures.len() as f64 + 2.0,
        "ingest histogram count: {acked}"
    );
    assert!(
        stored.has("stripe_webhook_ingest_seconds_bucket"),
        "explicit buckets"
    );
    // The outbox gauges are this app's own database, exactly.
    let pending = (fixtures.len() + 1) as f64;
    let jobs = "reconciler_outbox_jobs";
    assert_eq!(stored.value(jobs, &[("state", "pending")]), pending);
    assert_eq!(stored.value(jobs, &[("state", "in_flight")]), 0.0);
    assert_eq!(stored.value(jobs, &[("state", "dead")]), 0.0);
    assert!(stored.has("reconciler_outbox_oldest_pending_seconds"));

    let ran = app.engine.run_until_idle().await.unwrap();
    assert_eq!(ran, fixtures.len() + 1);
    let drained = scrape(&app).await;

    let events = "reconciler_events_total";
    for (_, t) in &fixtures {
        let labels = [("type", t.as_str()), ("outcome", "skipped")];
        let moved = drained.value(events, &labels) - before.value(events, &labels);
        assert!(moved >= 1.0, "{t} skipped (no handler yet): {moved}");
    }
    let own_labels = [("type", own_type.as_str())];
    assert_eq!(
        drained.value(events, &[own_labels[0], ("outcome", "skipped")]),
        1.0
    );
    assert_eq!(
        drained.value(events, &[own_labels[0], ("outcome", "applied")]),
        0.0
    );
    let timed = "reconciler_event_processing_seconds_count";
    assert_eq!(drained.value(timed, &own_labels), 1.0);
    assert_eq!(drained.value(jobs, &[("state", "pending")]), 0.0);
    let oldest = "reconciler_outbox_oldest_pending_seconds";
    assert_eq!(drained.value(oldest, &[]), 0.0);
}

#[tokio::test]
async fn a_bad_signature_counts_as_a_rejection_with_its_code() {
    let app = TestApp::spawn().await;
    let failures = "stripe_webhook_signature_failures_total";
    let code = [("code", "no_matching_signature")];
    let before = scrape(&app).await;

    let body = event("evt_metrics_forged", "invoice.paid", "cus_1");
    let sig = signature::sign(&Secret::new("whsec_not_ours"), now(), &body);
    let (status, _) = app.post_webhook(&body, Some(&sig)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let after = scrape(&app).await;
    assert!(after.value(failures, &code) - before.value(failures, &code) >= 1.0);
    let rejected = [("type", "unknown"), ("outcome", "rejected")];
    let received = "stripe_webhooks_received_total";
    assert!(after.value(received, &rejected) - before.value(received, &rejected) >= 1.0);
    // Every code has a series from the start, so `rate()` works before the first failure.
    for code in [
        "missing_signature",
        "malformed_signature",
        "timestamp_out_of_tolerance",
    ] {
        assert!(
            after.0.contains(&format!("{failures}{{code=\"{code}\"}}")),
            "{code}"
        );
    }
}

/// Fails every event with a retryable error.
struct AlwaysRetry;

impl EventHandler for AlwaysRetry {
    async fn handle(&self, _: &mut PgConnection, _: &StoredEvent) -> Result<Outcome, JobError> {
        Err(JobError::retryable(anyhow::anyhow!("down on purpose")))
    }
}

#[tokio::test]
async fn retries_and_dead_letters_are_counted() {
    let flaky = unique_type("flaky");
    let registry = Registry::default().on_event(&flaky, AlwaysRetry);
    let app = TestApp::spawn_with_registry(|s| s.engine.max_attempts = 2, registry).await;
    let before = scrape(&app).await;

    app.post_event(&event("evt_metrics_flaky", &flaky, "cus_flaky"))
        .await;
    app.engine.run_until_idle().await.unwrap(); // attempt 1: retry later
    sqlx::query("UPDATE jobs SET run_at = now()")
        .execute(&app.pool)
        .await
        .unwrap();
    app.engine.run_until_idle().await.unwrap(); // attempt 2 of 2: dead

    let after = scrape(&app).await;
    let events = "reconciler_events_total";
    for outcome in ["retry", "dead"] {
        let labels = [("type", flaky.as_str()), ("outcome", outcome)];
        assert_eq!(after.value(events, &labels), 1.0, "{outcome}");
    }
    let kind = [("kind", "stripe_event")];
    for name in [
        "reconciler_job_retries_total",
        "reconciler_dead_letters_total",
    ] {
        assert!(
            after.value(name, &kind) - before.value(name, &kind) >= 1.0,
            "{name}"
        );
    }
    let jobs = "reconciler_outbox_jobs";
    assert_eq!(after.value(jobs, &[("state", "dead")]), 1.0);
    assert_eq!(after.value(jobs, &[("state", "pending")]), 0.0);
}

#[tokio::test]
async fn the_token_can_be_required() {
    let open = TestApp::spawn().await;
    assert_eq!(open.get_text("/metrics", None).await.0, StatusCode::OK);

    let app = TestApp::spawn_with(|s| s.metrics.require_token = true).await;
    let (status, _) = app.get_text("/metrics", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.get_text("/metrics", Some("not-the-token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, text) = app.get_text("/metrics", Some(API_TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("reconciler_outbox_jobs"), "{text}");
}

#[tokio::test]
async fn the_stripe_client_counts_its_calls_by_endpoint_and_status() {
    use stripe_reconciler::config::Secret;
    use stripe_reconciler::stripe::client::StripeApi;

    let w = crate::stripe_side::World::new().await;
    let stripe_id = w.paying_customer("u_metrics_client").await;
    let api = StripeApi::new(
        &Secret::new(crate::stripe_side::STRIPE_KEY),
        &w.stripe.url(),
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    let calls = "stripe_api_calls_total";
    let found = [("endpoint", "customers.retrieve"), ("status", "200")];
    let missing = [("endpoint", "subscriptions.retrieve"), ("status", "404")];
    let before = scrape(&w.app).await;
    // Through the real client, against the fake: one answered, one refused.
    api.retrieve_customer(&stripe_id).await.unwrap();
    let refused = api
        .retrieve_subscription("sub_no_such_subscription")
        .await
        .unwrap_err();
    assert_eq!(refused.status, Some(404), "{refused:?}");
    let after = scrape(&w.app).await;
    assert!(
        after.value(calls, &found) - before.value(calls, &found) >= 1.0,
        "the answered call is counted"
    );
    assert!(
        after.value(calls, &missing) - before.value(calls, &missing) >= 1.0,
        "the refused call is counted with Stripe's status"
    );
}
