//! No double billing, no stuck attaches, no races that answer 500: attaches are idempotent per
//! (customer, plan) against the fake Stripe, get-or-create holds under real concurrency, and
//! data Postgres refuses goes to dead letters at once.

use std::process::Command;
use std::time::Duration;

use fake_stripe::Fault;
use futures::future::join_all;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use stripe_reconciler::config::Secret;
use stripe_reconciler::stripe::client::StripeApi;

use crate::helpers::*;
use crate::stripe_side::{STRIPE_KEY, World, plan_ids};

fn attach_body(customer: &str, plan: &str) -> Value {
    json!({"customer_id": customer, "plan_id": plan,
           "success_url": "https://app.test/ok", "cancel_url": "https://app.test/cancel"})
}

async fn post_attach(w: &World, customer: &str, plan: &str) -> (StatusCode, Value) {
    w.app
        .api(
            Method::POST,
            "/v1/attach",
            Some(attach_body(customer, plan)),
        )
        .await
}

fn subscriptions_of(w: &World, customer: &str) -> Vec<Value> {
    w.stripe
        .subscriptions()
        .into_iter()
        .filter(|s| s["metadata"]["customer_id"] == customer)
        .collect()
}

#[tokio::test]
async fn attaching_a_plan_the_customer_has_creates_nothing_in_stripe() {
    let w = World::new().await;
    w.paying_customer("u_twice").await;
    let first = w.attach("u_twice", "pro").await;
    w.drain().await;
    let subscription =
        w.attach_state(first["id"].as_str().unwrap()).await["stripe_subscription_id"].clone();

    for _ in 0..3 {
        let (status, again) = post_attach(&w, "u_twice", "pro").await;
        assert_eq!(status, StatusCode::OK, "{again}");
        assert_eq!(again["duplicate"], true);
        assert_eq!(again["state"], "active");
        assert_eq!(
            again["id"], first["id"],
            "names the attach that made it live"
        );
        assert_eq!(again["stripe_subscription_id"], subscription);
        w.drain().await;
    }
    // An add-on, twice.
    let addon = w.attach("u_twice", "priority-support").await;
    assert_eq!(addon["duplicate"], false);
    w.drain().await;
    let (status, again) = post_attach(&w, "u_twice", "priority-support").await;
    assert_eq!(
        (status, &again["duplicate"]),
        (StatusCode::OK, &json!(true))
    );
    w.drain().await;

    let subs = subscriptions_of(&w, "u_twice");
    assert_eq!(subs.len(), 2, "one pro, one add-on: {subs:#?}");
    assert_eq!(w.calls("POST", "/v1/subscriptions").len(), 2);
    assert_eq!(
        w.app
            .count("SELECT count(*) FROM attaches WHERE plan_id = 'pro'")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_attaches_of_one_plan_open_one_checkout_session() {
    let w = World::new().await;
    w.app.create_customer(json!({"id": "u_rush"})).await;

    let answers = join_all((0..10).map(|_| post_attach(&w, "u_rush", "pro"))).await;
    for (status, body) in &answers {
        assert!(status.is_success(), "{status}: {body}");
    }
    let mut ids: Vec<&str> = answers
        .iter()
        .map(|(_, b)| b["id"].as_str().unwrap())
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 1, "every answer names the same attach: {ids:?}");
    assert_eq!(
        answers
            .iter()
            .filter(|(_, b)| b["duplicate"] == false)
            .count(),
        1
    );
    w.drain().await;
    assert_eq!(w.stripe.checkout_sessions().len(), 1);

    // While the session is open, asking again hands out the same checkout URL.
    let (status, again) = post_attach(&w, "u_rush", "pro").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["state"], "checkout_required");
    let session = &w.stripe.checkout_sessions()[0];
    assert_eq!(again["checkout_url"], session["url"]);
    w.stripe
        .complete_checkout(session["id"].as_str().unwrap())
        .await
        .unwrap();
    w.drain().await;
    assert_eq!(subscriptions_of(&w, "u_rush").len(), 1);
    assert_eq!(w.stripe.checkout_sessions().len(), 1);
}

#[tokio::test]
async fn an_attach_takes_over_the_subscription_stripe_already_bills() {
    let w = World::new().await;
    w.paying_customer("u_behind").await;
    let first = w.attach("u_behind", "pro").await;
    w.drain().await;
    let subscription =
        w.attach_state(first["id"].as_str().unwrap()).await["stripe_subscription_id"].clone();
    // Our store lost sight of it (a restore from an older backup, say).
    sqlx::query("DELETE FROM customer_plans WHERE plan_id = 'pro'")
        .execute(&w.app.pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM attaches")
        .execute(&w.app.pool)
        .await
        .unwrap();

    let again = w.attach("u_behind", "pro").await;
    assert_eq!(again["duplicate"], false, "the store did not know of it");
    w.drain().await;

    let done = w.attach_state(again["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "active", "{done}");
    assert_eq!(done["stripe_subscription_id"], subscription);
    assert_eq!(subscriptions_of(&w, "u_behind").len(), 1);
    assert_eq!(w.calls("POST", "/v1/subscriptions").len(), 1);
    assert!(plan_ids(&w.customer("u_behind").await).contains(&("pro".into(), "active".into())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_reports_double_billing_loudly() {
    let w = World::new().await;
    let stripe_customer = w.paying_customer("u_double").await;
    let first = w.attach("u_double", "pro").await;
    w.drain().await;
    let sub_id = w.attach_state(first["id"].as_str().unwrap()).await["stripe_subscription_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let price = w
        .stripe
        .subscriptions()
        .into_iter()
        .find(|s| s["id"] == sub_id.as_str())
        .unwrap()["items"]["data"][0]["price"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Someone subscribes the customer again by hand, outside the daemon.
    let api = StripeApi::new(
        &Secret::new(STRIPE_KEY),
        &w.stripe.url(),
        Duration::from_secs(2),
    )
    .unwrap();
    let (by_hand, _) = api
        .create_subscription(
            "by-hand-double",
            &stripe_customer,
            &price,
            1,
            None,
            None,
            Default::default(),
        )
        .await
        .unwrap();
    w.drain().await;

    let reconcile = || w.reconcile_command(&[]).output().unwrap();
    let out = tokio::task::block_in_place(reconcile);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("DOUBLE BILLING: u_double")
            && stderr.contains(&sub_id)
            && stderr.contains(by_hand.id.as_str())
            && stderr.contains("plan pro"),
        "{stderr}"
    );
    let gauge = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("reconciler_duplicate_subscriptions "))
            .map(str::to_owned)
    };
    let (_, metrics) = w.app.get_text("/metrics", Some(API_TOKEN)).await;
    assert_eq!(
        gauge(&metrics).as_deref(),
        Some("reconciler_duplicate_subscriptions 1")
    );

    // Once a person cancels one of them, reconcile is quiet again.
    w.stripe
        .cancel_subscription(by_hand.id.as_str())
        .await
        .unwrap();
    w.drain().await;
    let out = tokio::task::block_in_place(reconcile);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, metrics) = w.app.get_text("/metrics", Some(API_TOKEN)).await;
    assert_eq!(
        gauge(&metrics).as_deref(),
        Some("reconciler_duplicate_subscriptions 0")
    );
}

#[tokio::test]
async fn an_attach_whose_job_dies_says_failed_and_frees_the_plan() {
    let w = World::new().await;
    w.paying_customer("u_dead").await;
    w.stripe
        .fail_next("POST", "/v1/subscriptions", Fault::Status400, 1);

    let attach = w.attach("u_dead", "pro").await;
    w.drain().await;
    let failed = w.attach_state(attach["id"].as_str().unwrap()).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("refused")),
        "{failed}"
    );
    assert_eq!(
        w.app
            .count("SELECT count(*) FROM jobs WHERE state = 'dead'")
            .await,
        1
    );

    // A new attach of the plan is not held back by the failed one.
    let again = w.attach("u_dead", "pro").await;
    assert_ne!(again["id"], attach["id"]);
    w.drain().await;
    assert_eq!(
        w.attach_state(again["id"].as_str().unwrap()).await["state"],
        "active"
    );
}

#[tokio::test]
async fn a_price_the_stripe_account_lost_is_created_again_once() {
    let w = World::new().await;
    let price_of = |w: &World, customer: &str| {
        subscriptions_of(w, customer)[0]["items"]["data"][0]["price"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    w.paying_customer("u_before").await;
    w.attach("u_before", "pro").await;
    w.drain().await;
    let lost = price_of(&w, "u_before");
    w.stripe.delete_price(&lost);

    for customer in ["u_after_1", "u_after_2"] {
        w.paying_customer(customer).await;
        let attach = w.attach(customer, "pro").await;
        w.drain().await;
        let done = w.attach_state(attach["id"].as_str().unwrap()).await;
        assert_eq!(done["state"], "active", "{customer}: {done}");
    }
    let renewed = price_of(&w, "u_after_1");
    assert_ne!(renewed, lost);
    assert_eq!(
        price_of(&w, "u_after_2"),
        renewed,
        "recreated once, then reused"
    );
    let pro_prices = w
        .stripe
        .prices()
        .into_iter()
        .filter(|p| p["metadata"]["plan_id"] == "pro" && !p["recurring"].is_null())
        .count();
    assert_eq!(pro_prices, 1, "the lost one is gone, one new one exists");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_email_only_get_or_create_makes_one_customer() {
    let app = TestApp::spawn().await;
    let answers =
        join_all((0..20).map(|_| app.create_customer(json!({"email": "Same@Example.test"})))).await;
    let created = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .count();
    assert!(
        answers
            .iter()
            .all(|(s, _)| *s == StatusCode::CREATED || *s == StatusCode::OK),
        "{answers:?}"
    );
    assert_eq!(created, 1, "{answers:?}");
    assert_eq!(
        app.count("SELECT count(*) FROM customers WHERE lower(email) = 'same@example.test'")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_patch_and_delete_races_answer_200_201_or_404() {
    let app = TestApp::spawn().await;
    let mut exists = [false; 3];
    for round in 0..25 {
        let id = format!("u_race_{}", round % 3);
        let path = format!("/v1/customers/{id}");
        let (a, b, c, d) = tokio::join!(
            app.create_customer(json!({"id": id, "name": "A", "email": "r@x.test"})),
            app.api(Method::PATCH, &path, Some(json!({"name": "B"}))),
            app.api(Method::DELETE, &path, None),
            app.create_customer(json!({"id": id, "metadata": {"round": round}})),
        );
        let created = a.0 == StatusCode::CREATED || d.0 == StatusCode::CREATED;
        let deleted = c.0 == StatusCode::OK;
        for (status, body) in [a, b, c, d] {
            assert!(
                [
                    StatusCode::OK,
                    StatusCode::CREATED,
                    StatusCode::NOT_FOUND,
                    StatusCode::CONFLICT
                ]
                .contains(&status),
                "round {round}: {status} {body}"
            );
        }
        // The end state is one some order of the four requests leaves.
        let (status, view) = app.api(Method::GET, &path, None).await;
        let existed = std::mem::replace(&mut exists[round % 3], status == StatusCode::OK);
        if status == StatusCode::OK {
            assert!(created || (existed && !deleted), "round {round}: {view}");
            // Made whole or not at all: a customer comes with its default plan.
            let free = view["products"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["plan_id"] == "free" && p["status"] == "active");
            assert!(free, "round {round}: {view}");
        } else {
            assert_eq!(status, StatusCode::NOT_FOUND, "round {round}: {view}");
            assert!(deleted || (!existed && !created), "round {round}");
        }
    }
    let orphans: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM customer_plans p
         WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.pk = p.customer_pk)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(orphans, 0);
}

#[tokio::test]
async fn an_event_whose_data_postgres_refuses_goes_dead_at_once() {
    let w = World::new().await;
    let stripe_customer = w.paying_customer("u_poison").await;
    let mut poisoned: Value =
        serde_json::from_slice(&std::fs::read(fixtures_dir().join("invoice.paid.json")).unwrap())
            .unwrap();
    poisoned["id"] = "evt_poison_currency".into();
    poisoned["data"]["object"]["customer"] = stripe_customer.as_str().into();
    poisoned["data"]["object"]["currency"] = "us\u{0}d".into();
    let mut healthy = poisoned.clone();
    healthy["id"] = "evt_after_poison".into();
    healthy["created"] = (poisoned["created"].as_i64().unwrap() + 1).into();
    healthy["data"]["object"]["id"] = "in_after_poison".into();
    healthy["data"]["object"]["currency"] = "usd".into();
    for event in [&poisoned, &healthy] {
        let (status, body) = w.app.post_event(&serde_json::to_vec(event).unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    w.drain().await;

    let (_, dead) = w
        .app
        .get("/v1/events/evt_poison_currency", Some(API_TOKEN))
        .await;
    assert_eq!(dead["state"], "dead", "{dead}");
    assert_eq!(dead["attempts"], 1, "no retries for data Postgres refuses");
    let (_, next) = w
        .app
        .get("/v1/events/evt_after_poison", Some(API_TOKEN))
        .await;
    assert_eq!(
        next["state"], "applied",
        "the customer's queue moved on: {next}"
    );
}

#[test]
fn cli_input_errors_exit_2_with_one_line() {
    let output = Command::new(env!("CARGO_BIN_EXE_stripe-reconciler"))
        .args(["events", "replay", "--since", "100000000d"])
        .env_clear()
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("100000000d"), "{stderr}");

    let output = Command::new(env!("CARGO_BIN_EXE_stripe-reconciler"))
        .args(["replay", "/nonexistent/event.json", "--secret", "whsec_x"])
        .env_clear()
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cannot read /nonexistent/event.json"),
        "{stderr}"
    );
}
