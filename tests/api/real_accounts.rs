//! Real Stripe accounts: customers linked from either side, deleted Stripe customers,
//! name and email both ways, events caught up after they were lost, the webhook endpoint set
//! up right, and subscription items in the legacy shape.

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use fake_stripe::Delivery;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use stripe_reconciler::catalog::Interval;
use stripe_reconciler::config::Secret;
use stripe_reconciler::stripe::client::StripeApi;

use crate::helpers::*;
use crate::stripe_side::{STRIPE_KEY, World, plan_ids};

fn api(w: &World) -> StripeApi {
    StripeApi::new(
        &Secret::new(STRIPE_KEY),
        &w.stripe.url(),
        Duration::from_secs(5),
    )
    .unwrap()
}

/// A monthly price for pro made by hand in the dashboard, naming the plan in its metadata.
async fn pro_price(w: &World) -> String {
    let api = api(w);
    let meta = HashMap::from([("plan_id".to_owned(), "pro".to_owned())]);
    let product = api
        .create_product("t-prod", "Pro by hand", meta.clone())
        .await
        .unwrap();
    api.create_price(
        "t-price",
        &product,
        2000,
        "usd",
        Some(Interval::Month),
        meta,
    )
    .await
    .unwrap()
}

fn plans(view: &Value) -> Vec<(String, String)> {
    plan_ids(view)
}

fn pair(plan: &str, status: &str) -> (String, String) {
    (plan.to_owned(), status.to_owned())
}

async fn event_state(w: &World, id: &str) -> String {
    sqlx::query_scalar("SELECT state FROM events WHERE id = $1")
        .bind(id)
        .fetch_one(&w.app.pool)
        .await
        .unwrap()
}

/// `stripe-reconciler ARGS` against this world, not yet run.
fn command(w: &World, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stripe-reconciler"));
    command
        .args(args)
        .env_clear()
        .env("DATABASE_URL", &w.app.database_url)
        .env("STRIPE_API_KEY", STRIPE_KEY)
        .env("STRIPE_API_BASE", w.stripe.url())
        .env(
            "RECONCILER_CATALOG",
            fixtures_dir().join("../config/catalog.example.toml"),
        );
    command
}

fn run(mut command: Command) -> (i32, String) {
    let out = tokio::task::block_in_place(|| command.output().unwrap());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stripe_customer_naming_ours_links_on_customer_created_and_its_invoices_apply() {
    let w = World::new().await;
    let (status, _) = w.app.create_customer(json!({"id": "u_dash"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let price = pro_price(&w).await;

    let stripe_id = w
        .stripe
        .create_customer_in_dashboard(
            Some("Dana Dash"),
            Some("dana@example.test"),
            &[("customer_id", "u_dash")],
        )
        .await
        .unwrap();
    w.drain().await;
    let view = w.customer("u_dash").await;
    assert_eq!(view["stripe_id"], stripe_id.as_str(), "linked: {view}");
    assert_eq!(
        view["name"], "Dana Dash",
        "a change made in Stripe comes in"
    );
    assert_eq!(view["email"], "dana@example.test");

    w.stripe
        .subscribe_in_dashboard(&stripe_id, &price, &[])
        .await
        .unwrap();
    w.drain().await;
    let view = w.customer("u_dash").await;
    assert_eq!(plans(&view), [pair("pro", "active")], "{view}");
    assert_eq!(view["invoices"][0]["status"], "paid", "{view}");
}

#[tokio::test(flavor = "multi_thread")]
async fn linking_a_stripe_id_imports_its_subscription_and_reapplies_skipped_events() {
    let w = World::new().await;
    let price = pro_price(&w).await;
    // A paying Stripe customer the daemon knows nothing of yet: its events are skipped.
    let stripe_id = w
        .stripe
        .create_customer_in_dashboard(Some("Lee"), None, &[])
        .await
        .unwrap();
    w.stripe
        .subscribe_in_dashboard(&stripe_id, &price, &[])
        .await
        .unwrap();
    w.drain().await;
    let paid = w
        .stripe
        .events()
        .into_iter()
        .find(|e| e["type"] == "invoice.paid")
        .unwrap();
    let paid_id = paid["id"].as_str().unwrap().to_owned();
    assert_eq!(event_state(&w, &paid_id).await, "skipped");

    let (status, view) = w
        .app
        .create_customer(json!({"id": "u_link", "stripe_id": stripe_id}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{view}");
    w.drain().await;
    let view = w.customer("u_link").await;
    assert_eq!(
        plans(&view),
        [pair("pro", "active")],
        "the live subscription shows at once: {view}"
    );
    assert_eq!(view["invoices"].as_array().unwrap().len(), 1, "{view}");
    assert_eq!(view["invoices"][0]["status"], "paid");
    assert_eq!(event_state(&w, &paid_id).await, "applied", "re-applied");
    let customer = w
        .stripe
        .customers()
        .into_iter()
        .find(|c| c["id"] == stripe_id.as_str())
        .unwrap();
    assert_eq!(customer["metadata"]["customer_id"], "u_link");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_stripe_customer_is_unlinked_and_the_next_attach_makes_a_new_one() {
    let w = World::new().await;
    let old = w.paying_customer("u_gone").await;
    w.stripe.delete_customer(&old).await.unwrap();
    w.drain().await;
    let view = w.customer("u_gone").await;
    assert_eq!(view["stripe_id"], Value::Null, "unlinked: {view}");
    assert_eq!(plans(&view), [pair("free", "active")], "our customer stays");

    let attach = w.attach("u_gone", "pro").await;
    w.drain().await;
    let state = w.attach_state(attach["id"].as_str().unwrap()).await;
    assert_eq!(state["state"], "checkout_required", "{state}");
    let view = w.customer("u_gone").await;
    let new = view["stripe_id"].as_str().expect("a new Stripe customer");
    assert_ne!(new, old);
    let customer = w
        .stripe
        .customers()
        .into_iter()
        .find(|c| c["id"] == new)
        .unwrap();
    assert_eq!(customer["metadata"]["customer_id"], "u_gone");
}

#[tokio::test(flavor = "multi_thread")]
async fn name_and_email_flow_both_ways_and_our_own_echo_is_not_copied_back() {
    let w = World::new().await;
    let stripe_id = w.paying_customer("u_sync").await;
    let body = json!({"name": "Sam Sync", "email": "sam@example.test"});
    let (status, answer) = w
        .app
        .api(Method::PATCH, "/v1/customers/u_sync", Some(body))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // Changed again before the first push ran: the pushes land in order, the last wins.
    let body = json!({"name": "Sam Synced"});
    w.app
        .api(Method::PATCH, "/v1/customers/u_sync", Some(body))
        .await;
    w.drain().await;
    w.drain().await;
    let stripe_side = |w: &World| {
        w.stripe
            .customers()
            .into_iter()
            .find(|c| c["id"] == stripe_id.as_str())
            .unwrap()
    };
    assert_eq!(stripe_side(&w)["name"], "Sam Synced");
    assert_eq!(stripe_side(&w)["email"], "sam@example.test");
    let view = w.customer("u_sync").await;
    assert_eq!(view["name"], "Sam Synced");
    // The customer.updated echoes are ours: stored, applied as links only. Webhooks arrive
    // on their own time: wait for them rather than assume a drain saw them.
    let mut echoes: Vec<String> = Vec::new();
    for _ in 0..100 {
        echoes = sqlx::query_scalar(
            "SELECT id FROM events WHERE type = 'customer.updated' AND customer_id = $1",
        )
        .bind(&stripe_id)
        .fetch_all(&w.app.pool)
        .await
        .unwrap();
        if !echoes.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!echoes.is_empty());
    w.drain().await;

    // A change made in Stripe's dashboard comes in.
    w.stripe
        .update_customer_in_dashboard(&stripe_id, None, Some("sam@new.example.test"))
        .await
        .unwrap();
    let mut view = Value::Null;
    for _ in 0..100 {
        w.drain().await;
        view = w.customer("u_sync").await;
        if view["email"] == "sam@new.example.test" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(view["email"], "sam@new.example.test");
    assert_eq!(view["name"], "Sam Synced");
}

/// A customer on pro whose renewal events (invoice created and paid) are never delivered;
/// returns the renewal invoice.
async fn lost_renewal(w: &World, customer: &str) -> String {
    let stripe_id = w.paying_customer(customer).await;
    w.attach(customer, "pro").await;
    // The first invoice's webhook is on its way: let it land before webhooks are lost.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while w.customer(customer).await["invoices"]
        .as_array()
        .unwrap()
        .is_empty()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first invoice never came"
        );
        w.drain().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sub = w
        .stripe
        .subscriptions()
        .into_iter()
        .find(|s| s["customer"] == stripe_id.as_str())
        .unwrap();
    w.stripe.set_delivery(Delivery::Drop);
    w.stripe.advance_clock(Duration::from_secs(60));
    let invoice = w.stripe.renew(sub["id"].as_str().unwrap()).await.unwrap();
    w.stripe.pay_invoice(&invoice).await.unwrap();
    w.stripe.set_delivery(Delivery::Deliver);
    w.drain().await;
    let view = w.customer(customer).await;
    assert_eq!(
        view["invoices"].as_array().unwrap().len(),
        1,
        "lost: {view}"
    );
    invoice
}

#[tokio::test(flavor = "multi_thread")]
async fn catch_up_stores_and_applies_events_no_webhook_brought() {
    let w = World::new().await;
    let invoice = lost_renewal(&w, "u_lost").await;

    let (code, out) = run(command(&w, &["catch-up", "--since", "2h", "--dry-run"]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("would store 3"), "{out}");
    assert_eq!(
        w.customer("u_lost").await["invoices"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let (code, out) = run(command(&w, &["catch-up", "--since", "2h"]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("stored 3"), "{out}");
    w.drain().await;
    let view = w.customer("u_lost").await;
    let renewal = view["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["stripe_id"] == invoice.as_str())
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(renewal["status"], "paid", "{view}");
    let via: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE received_via = 'catch_up'")
            .fetch_one(&w.app.pool)
            .await
            .unwrap();
    assert_eq!(via, 3);

    // Again: nothing new.
    let (code, out) = run(command(&w, &["catch-up", "--since", "2h"]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("stored 0"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_catches_up_by_itself() {
    let w = World::with(|s| {
        s.stripe.catch_up_interval_secs = 1;
        s.stripe.catch_up_window_secs = 3600;
    })
    .await;
    let invoice = lost_renewal(&w, "u_periodic").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        w.drain().await;
        let view = w.customer("u_periodic").await;
        let found = view["invoices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["stripe_id"] == invoice.as_str() && i["status"] == "paid");
        if found {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not caught up: {view}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, metrics) = w.app.get_text("/metrics", None).await;
    assert!(
        metrics.contains("reconciler_caught_up_events_total{outcome=\"stored\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("stripe_events_by_api_version_total{api_version=\"2026-09-30.endive\"}"),
        "events are counted by API version"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn setup_webhook_creates_then_checks_and_fixes_the_endpoint() {
    let w = World::new().await;
    let url = "https://billing.example.test/webhooks/stripe";
    let (code, out) = run(command(&w, &["setup-webhook", "--url", url, "--check"]));
    assert_eq!(code, 1, "nothing there yet: {out}");

    let (code, out) = run(command(&w, &["setup-webhook", "--url", url]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("signing secret (shown once): whsec_"), "{out}");
    let endpoints = w.stripe.webhook_endpoints();
    assert_eq!(endpoints.len(), 1);
    let types = endpoints[0]["enabled_events"].as_array().unwrap();
    for wanted in [
        "invoice.paid",
        "customer.created",
        "checkout.session.async_payment_failed",
    ] {
        assert!(types.iter().any(|t| t == wanted), "{wanted}: {types:?}");
    }
    assert_eq!(endpoints[0]["api_version"], "2026-09-30.endive");
    let (code, out) = run(command(&w, &["setup-webhook", "--url", url, "--check"]));
    assert_eq!(code, 0, "{out}");

    // Someone trims the types in the dashboard: --check says what is missing, a run adds it.
    let id = endpoints[0]["id"].as_str().unwrap();
    api(&w)
        .update_webhook_endpoint_events("t-trim", id, &["invoice.paid"])
        .await
        .unwrap();
    let (code, out) = run(command(&w, &["setup-webhook", "--url", url, "--check"]));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("missing event types: ") && out.contains("customer.subscription.updated"),
        "{out}"
    );
    let (code, out) = run(command(&w, &["setup-webhook", "--url", url]));
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(command(&w, &["setup-webhook", "--url", url, "--check"]));
    assert_eq!(code, 0, "{out}");
    assert_eq!(w.stripe.webhook_endpoints().len(), 1, "fixed, not doubled");
}

/// A subscription event whose item is `item` (no `price`, or nothing at all).
fn legacy_event(id: &str, customer: &str, item: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": id, "object": "event", "api_version": "2019-12-03", "created": 1_795_000_000,
        "livemode": false, "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null},
        "type": "customer.subscription.created",
        "data": {"object": {
            "id": format!("sub_{id}"), "object": "subscription", "customer": format!("cus_{customer}"),
            "status": "active", "cancel_at_period_end": false, "start_date": 1_795_000_000,
            "metadata": {"customer_id": customer},
            "items": {"object": "list", "data": [item]}
        }}
    }))
    .unwrap()
}

#[tokio::test]
async fn legacy_plan_items_apply_and_an_unreadable_item_goes_dead_naming_it() {
    let app = TestApp::spawn().await;
    for id in ["u_legacy", "u_broken"] {
        app.create_customer(json!({"id": id})).await;
    }
    let item = json!({
        "id": "si_legacy", "object": "subscription_item", "quantity": 1,
        "current_period_start": 1_795_000_000, "current_period_end": 1_797_592_000,
        "plan": {"id": "plan_pro_legacy", "object": "plan", "metadata": {"plan_id": "pro"}}
    });
    assert_eq!(
        app.post_event(&legacy_event("evt_legacy", "u_legacy", item))
            .await
            .0,
        StatusCode::OK
    );
    let broken = json!({"id": "si_broken", "object": "subscription_item", "quantity": 1});
    assert_eq!(
        app.post_event(&legacy_event("evt_broken", "u_broken", broken))
            .await
            .0,
        StatusCode::OK
    );
    app.engine.run_until_idle().await.unwrap();

    let (_, view) = app.api(Method::GET, "/v1/customers/u_legacy", None).await;
    assert_eq!(plans(&view), [pair("pro", "active")], "{view}");
    let (_, event) = app.get("/v1/events/evt_broken", Some(API_TOKEN)).await;
    assert_eq!(event["state"], "dead", "{event}");
    let error = event["last_error"].as_str().unwrap();
    assert!(
        error.contains("items.data[0] (si_broken) has neither `price` nor `plan`"),
        "{error}"
    );
}
