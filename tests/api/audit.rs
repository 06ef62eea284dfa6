//! The continuous audit against Stripe (issue 24): with webhooks dropped, changes made on
//! Stripe's side (a subscription cancelled, a quantity and `cancel_at_period_end` changed, a
//! name changed in the dashboard) are found field by field, repaired through the read path,
//! written to the timeline and counted; a second run finds nothing; a dry run repairs nothing.

use std::collections::BTreeSet;
use std::process::Command;

use fake_stripe::Delivery;
use hyper::{Method, StatusCode};
use serde_json::Value;
use stripe_reconciler::audit::{self, Report, Scope};
use stripe_reconciler::billing::StripeContext;
use stripe_reconciler::config::Secret;

use crate::console::ConsoleClient;
use crate::helpers::*;
use crate::stripe_side::{STRIPE_KEY, World};

fn context(w: &World) -> StripeContext {
    let mut settings = test_settings(&w.app.database_url);
    settings.stripe.api_key = Some(Secret::new(STRIPE_KEY));
    settings.stripe.api_base = w.stripe.url();
    let catalog = stripe_reconciler::app::load_catalog(&settings).unwrap();
    StripeContext::from_settings(&settings.stripe, catalog)
        .unwrap()
        .unwrap()
}

/// A paying customer on `plan`; its subscription id.
async fn subscribed(w: &World, customer: &str, plan: &str) -> String {
    w.paying_customer(customer).await;
    let attach = w.attach(customer, plan).await;
    w.drain().await;
    let state = w.attach_state(attach["id"].as_str().unwrap()).await;
    state["stripe_subscription_id"].as_str().unwrap().to_owned()
}

/// `(customer, field)` of every difference the report lists.
fn fields(report: &Report) -> BTreeSet<(String, String)> {
    report
        .drift
        .iter()
        .flat_map(|c| {
            c.differences
                .iter()
                .map(|d| (c.customer.clone(), d.field.to_owned()))
        })
        .collect()
}

fn expected(list: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    list.iter()
        .map(|(c, f)| ((*c).to_owned(), (*f).to_owned()))
        .collect()
}

fn product<'a>(customer: &'a Value, plan: &str) -> &'a Value {
    customer["products"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["plan_id"] == plan)
        .unwrap_or_else(|| panic!("no {plan} in {customer:#}"))
}

async fn drift_entries(w: &World, customer: &str) -> Vec<Value> {
    let (status, page) = w
        .app
        .api(
            Method::GET,
            &format!("/v1/customers/{customer}/timeline?limit=100"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "audit.drift")
        .cloned()
        .collect()
}

async fn metrics_text(w: &World) -> String {
    let (status, text) = w.app.get_text("/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    text
}

fn metric(text: &str, line_start: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Drift made in the fake with webhooks dropped: `u_gone`'s subscription cancelled,
/// `u_seats`'s quantity 3 and set to cancel at the period end and its name changed in the
/// dashboard; `u_calm` untouched.
async fn drifted_world() -> (World, String, String) {
    let w = World::new().await;
    let gone = subscribed(&w, "u_gone", "pro").await;
    let seats = subscribed(&w, "u_seats", "team").await;
    subscribed(&w, "u_calm", "pro").await;
    w.stripe.set_delivery(Delivery::Drop);
    let api = context(&w).api;
    w.stripe.cancel_subscription(&gone).await.unwrap();
    let sub = api.retrieve_subscription(&seats).await.unwrap();
    api.set_quantity("dash-q", &sub, 3, false).await.unwrap();
    api.set_cancel_at_period_end("dash-c", &seats, true)
        .await
        .unwrap();
    let seats_stripe = w.customer("u_seats").await["stripe_id"]
        .as_str()
        .unwrap()
        .to_owned();
    w.stripe
        .update_customer_in_dashboard(&seats_stripe, Some("Seats Renamed"), None)
        .await
        .unwrap();
    w.drain().await;
    // Nothing reached the store.
    assert_eq!(
        product(&w.customer("u_gone").await, "pro")["status"],
        "active"
    );
    assert_eq!(product(&w.customer("u_seats").await, "team")["quantity"], 1);
    (w, gone, seats)
}

const DRIFT: &[(&str, &str)] = &[
    ("u_gone", "status"),
    ("u_seats", "cancel_at"),
    ("u_seats", "cancel_at_period_end"),
    ("u_seats", "name"),
    ("u_seats", "quantity"),
];

#[tokio::test]
async fn the_audit_finds_drift_made_behind_our_back_and_repairs_it() {
    let (w, _gone, seats) = drifted_world().await;
    let stripe = context(&w);
    let changed = Scope::Changed {
        since: None,
        sample: 0,
    };

    // A dry run finds every field and changes nothing.
    let dry = audit::run(&stripe, &w.app.pool, changed, true)
        .await
        .unwrap();
    assert_eq!(fields(&dry), expected(DRIFT), "{dry:#?}");
    assert_eq!(dry.checked, 3, "{dry:#?}");
    assert!(dry.audit_id.is_none() && dry.drift.iter().all(|c| !c.repaired));
    assert_eq!(
        product(&w.customer("u_gone").await, "pro")["status"],
        "active"
    );
    assert_eq!(product(&w.customer("u_seats").await, "team")["quantity"], 1);
    assert!(drift_entries(&w, "u_seats").await.is_empty());
    assert_eq!(w.app.count("SELECT count(*) FROM audits").await, 0);
    let before = metrics_text(&w).await;
    assert_eq!(
        metric(&before, "reconciler_drift_total{field=\"quantity\"}"),
        None
    );
    assert_eq!(
        metric(&before, "reconciler_audit_last_run_timestamp_seconds"),
        Some(0.0)
    );

    // The run repairs: the store equals Stripe.
    let report = audit::run(&stripe, &w.app.pool, changed, false)
        .await
        .unwrap();
    assert_eq!(fields(&report), expected(DRIFT), "{report:#?}");
    assert!(report.drift.iter().all(|c| c.repaired), "{report:#?}");
    let quantity = report
        .drift
        .iter()
        .flat_map(|c| &c.differences)
        .find(|d| d.field == "quantity")
        .unwrap();
    assert_eq!(
        (quantity.ours.as_str(), quantity.stripe.as_str()),
        ("1", "3")
    );
    assert_eq!(quantity.subscription_id.as_deref(), Some(seats.as_str()));

    let gone = w.customer("u_gone").await;
    // An ended plan leaves the customer's products; the group's default takes over.
    assert_eq!(
        crate::stripe_side::plan_ids(&gone),
        [("free".to_owned(), "active".to_owned())],
        "{gone:#}"
    );
    let view = w.customer("u_seats").await;
    let team = product(&view, "team");
    assert_eq!(team["quantity"], 3, "{view:#}");
    assert_eq!(team["cancel_at_period_end"], true, "{view:#}");
    assert_eq!(view["name"], "Seats Renamed", "{view:#}");

    // The timeline says what differed, under the run's source.
    let entries = drift_entries(&w, "u_seats").await;
    assert_eq!(entries.len(), 1, "{entries:#?}");
    let entry = &entries[0];
    assert_eq!(
        entry["source"],
        format!("audit:{}", report.audit_id.unwrap())
    );
    assert_eq!(entry["repaired"], true);
    let listed: BTreeSet<&str> = entry["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        listed,
        BTreeSet::from(["cancel_at", "cancel_at_period_end", "name", "quantity"])
    );
    assert_eq!(drift_entries(&w, "u_gone").await.len(), 1);
    assert!(drift_entries(&w, "u_calm").await.is_empty());

    // The metrics count each field once.
    let after = metrics_text(&w).await;
    for field in [
        "status",
        "quantity",
        "cancel_at_period_end",
        "cancel_at",
        "name",
    ] {
        let line = format!("reconciler_drift_total{{field=\"{field}\"}}");
        assert_eq!(metric(&after, &line), Some(1.0), "{line}\n{after}");
    }
    let last = metric(&after, "reconciler_audit_last_run_timestamp_seconds").unwrap();
    assert!(last >= report.started_at.timestamp() as f64, "{after}");

    // A read that tied with a state of its second queues a read of its own: let it run.
    w.drain().await;
    let again = audit::run(&stripe, &w.app.pool, Scope::All, false)
        .await
        .unwrap();
    assert_eq!(again.checked, 3, "{again:#?}");
    assert!(
        again.busy.is_empty() && again.drift.is_empty(),
        "{again:#?}"
    );
    assert_eq!(drift_entries(&w, "u_seats").await.len(), 1);
}

/// `stripe-reconciler audit ARGS` against this world (the environment `reconcile` gets).
fn audit_command(w: &World, args: &[&str]) -> Command {
    let base = w.reconcile_command(&[]);
    let mut command = Command::new(base.get_program());
    command.arg("audit").args(args).env_clear();
    for (key, value) in base.get_envs() {
        if let Some(value) = value {
            command.env(key, value);
        }
    }
    command
}

fn output(mut command: Command) -> (Option<i32>, String, String) {
    let out = tokio::task::block_in_place(|| command.output().unwrap());
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_command_reports_repairs_and_the_console_shows_the_last_run() {
    let (w, _gone, _seats) = drifted_world().await;

    let (code, json, err) = output(audit_command(&w, &["--dry-run", "--json"]));
    assert_eq!(code, Some(1), "{json}{err}");
    let report: Value = serde_json::from_str(&json).unwrap();
    let found: BTreeSet<(String, String)> = report["drift"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| {
            let customer = c["customer"].as_str().unwrap().to_owned();
            c["differences"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |d| (customer.clone(), d["field"].as_str().unwrap().to_owned()))
        })
        .collect();
    assert_eq!(found, expected(DRIFT), "{json}");
    assert_eq!(product(&w.customer("u_seats").await, "team")["quantity"], 1);
    assert_eq!(w.app.count("SELECT count(*) FROM audits").await, 0);

    let (code, table, err) = output(audit_command(&w, &[]));
    assert_eq!(code, Some(1), "{table}{err}");
    assert!(
        table.contains("u_seats") && table.contains("quantity"),
        "{table}"
    );
    assert!(
        table.contains(
            "3 customers checked, 0 skipped (work queued), 2 with drift (5 differences), 2 repaired"
        ),
        "{table}"
    );
    assert_eq!(product(&w.customer("u_seats").await, "team")["quantity"], 3);
    assert_eq!(drift_entries(&w, "u_gone").await.len(), 1);

    let mut console = ConsoleClient::new(&w.app);
    console.sign_in().await;
    let page = console.get("/console/outbox").await;
    assert_eq!(page.status, StatusCode::OK);
    let block = page
        .body
        .split("id=\"audit\"")
        .nth(1)
        .expect("a Last audit block");
    assert!(block.contains("Last audit") || page.body.contains("Last audit"));
    assert!(block.contains("2 customers, 5 fields"), "{block}");
    assert!(block.contains("quantity"), "{block}");

    w.drain().await;
    let (code, again, err) = output(audit_command(&w, &["--all"]));
    assert_eq!(code, Some(0), "{again}{err}");
    assert!(
        again.contains("3 customers checked, 0 skipped (work queued), 0 with drift"),
        "{again}"
    );

    // Without a Stripe key: a usage error, before anything is read.
    let mut keyless = audit_command(&w, &[]);
    keyless.env_remove("STRIPE_API_KEY");
    let (code, _, err) = output(keyless);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("audit needs STRIPE_API_KEY"), "{err}");
}
