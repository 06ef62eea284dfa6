//! Applying a batch's independent events together (one set-based call for a wave's
//! subscription events, `engine.apply_together`) writes exactly what applying them one at a
//! time writes: every convergence scenario, several customers each, their tails stored first
//! and drained at once (so batches hold many customers' events, in waves), once with the
//! set-based paths (subscriptions, invoices) and once without; each customer's view (plans,
//! balances, invoices, attach, `check`) and whole timeline (kinds, times, sources, details)
//! must be equal.

use hyper::Method;
use serde_json::Value;
use stripe_reconciler::metrics::APPLIED_TOGETHER;

use crate::convergence::{Ids, P1, prepare, scenario, track_before_tail, view};
use crate::helpers::*;

/// The scenarios of `convergence.rs`: subscriptions created, renewed, failed and recovered,
/// upgraded, canceled, paused, ended; checkouts and attaches waiting on a payment.
const SCENARIOS: &[&str] = &[
    "checkout",
    "renewal",
    "recovery",
    "cancel",
    "upgrade",
    "three_d_secure",
    "abandoned",
    "async_paid",
    "async_failed",
    "unpaid",
    "pause_resume",
    "cancel_at",
];

/// Customers per scenario.
const COPIES: usize = 3;

/// Runs every scenario `COPIES` times in `app`: setups applied one by one, then all tails
/// stored (round robin across customers, each tail in its order) and drained at once.
/// Answers each customer's view and timeline, by shape.
async fn run_all(app: &TestApp) -> Vec<(String, Value, Value)> {
    let mut runs = Vec::new();
    for name in SCENARIOS {
        for _ in 0..COPIES {
            let ids = Ids::new(name);
            let s = scenario(name, &ids);
            prepare(app, &ids, &s).await;
            for body in &s.setup {
                let (status, answer) = app.post_event(body).await;
                assert!(status.is_success(), "{answer}");
                app.engine.run_until_idle().await.unwrap();
            }
            track_before_tail(app, &ids, &s).await;
            runs.push((name, ids, s));
        }
    }
    let longest = runs.iter().map(|(_, _, s)| s.tail.len()).max().unwrap();
    for k in 0..longest {
        for (_, _, s) in &runs {
            if let Some(body) = s.tail.get(k) {
                let (status, answer) = app.post_event(body).await;
                assert!(status.is_success(), "{answer}");
            }
        }
    }
    app.engine.run_until_idle().await.unwrap();
    let mut seen = Vec::new();
    for (name, ids, _) in &runs {
        let path = format!("/v1/customers/{}/timeline?limit=100", ids.customer());
        let (status, timeline) = app.api(Method::GET, &path, None).await;
        assert!(status.is_success(), "{timeline}");
        let mut timeline: Value =
            serde_json::from_str(&timeline.to_string().replace(&ids.run, "RUN")).unwrap();
        // The default plan attached when the test made the customer: at the wall clock.
        for entry in timeline["data"].as_array_mut().unwrap() {
            if entry["source"] == "system" {
                entry["at"] = Value::Null;
            }
        }
        seen.push((name.to_string(), view(app, ids).await, timeline));
    }
    seen
}

#[tokio::test]
async fn applying_together_writes_what_one_at_a_time_writes() {
    let together = TestApp::spawn().await;
    let alone = TestApp::spawn_with(|s| s.engine.apply_together = false).await;
    let before = together_count(&together).await;
    let expected = run_all(&alone).await;
    let got = run_all(&together).await;
    assert_eq!(got.len(), expected.len());
    for ((name, view, timeline), (_, want_view, want_timeline)) in got.iter().zip(&expected) {
        assert_eq!(view, want_view, "{name}: the customer's view");
        assert_eq!(timeline, want_timeline, "{name}: the timeline");
    }
    // The set-based paths were taken (other tests may count too: at least this many).
    let after = together_count(&together).await;
    for (applier, at_least) in [("subscription", SCENARIOS.len() * COPIES), ("invoice", 12)] {
        let applied_together = after(applier) - before(applier);
        assert!(
            applied_together >= at_least as f64,
            "only {applied_together} {applier} events were applied together"
        );
    }
}

/// How many events each applier applied together so far (process-wide).
async fn together_count(app: &TestApp) -> impl Fn(&str) -> f64 {
    let (_, text) = app.get_text("/metrics", None).await;
    move |applier| {
        let label = format!("{APPLIED_TOGETHER}{{applier=\"{applier}\"}}");
        text.lines()
            .filter(|l| l.starts_with(&label))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum()
    }
}

/// Stripe's deletion of a subscription whose other events have not come yet: the group had
/// been held by the default plan all along as far as we know, so the default plan restarts
/// when the subscription ended (the other order had replaced it first), by either path (a
/// batch of such customers, so that they are applied together where that is on).
#[tokio::test]
async fn a_deletion_that_comes_first_restarts_the_default_plan_at_its_end() {
    for app in [
        TestApp::spawn().await,
        TestApp::spawn_with(|s| s.engine.apply_together = false).await,
    ] {
        let ended = P1.1;
        let mut customers = Vec::new();
        for _ in 0..6 {
            let ids = Ids::new("first_deletion");
            prepare(&app, &ids, &scenario("cancel", &ids)).await;
            let sub = ids.subscription("canceled", "pro", P1, true, Some(ended));
            let body = ids.envelope(2, "customer.subscription.deleted", ended + 2, sub, None);
            let (status, answer) = app.post_event(&body).await;
            assert!(status.is_success(), "{answer}");
            customers.push(ids);
        }
        app.engine.run_until_idle().await.unwrap();
        for ids in &customers {
            let view = view(&app, ids).await;
            let free = view["products"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["plan_id"] == "free")
                .unwrap_or_else(|| panic!("no free plan: {view}"));
            assert_eq!(free["status"], "active", "{view}");
            let started = chrono::DateTime::from_timestamp(ended, 0).unwrap();
            assert_eq!(free["started_at"], started.to_rfc3339(), "{view}");
        }
    }
}
