//! Issue 11: what a security tester sent a release build, and what must hold against it.

use std::time::Duration;

use hyper::{Method, StatusCode};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use rand::Rng;
use serde_json::{Value, json};
use stripe_reconciler::config::Secret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// The helper's event for `id`, with `edit` applied to its JSON.
fn event_with(id: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut value: Value =
        serde_json::from_slice(&event(id, "invoice.paid", &format!("cus_{id}"))).unwrap();
    edit(&mut value);
    serde_json::to_vec(&value).unwrap()
}

/// Random letters and digits: long values that compression cannot shrink under Postgres'
/// index row limit (~2.7 kB).
fn incompressible(len: usize) -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Settings that pile concurrent deliveries into one group-commit batch.
fn one_big_batch(s: &mut stripe_reconciler::config::Settings) {
    s.ingest.writers = 1;
    s.ingest.batch_wait_us = 50_000;
}

// ---- 1. one bad delivery must not fail its batch ----

#[tokio::test]
async fn poisoned_deliveries_are_refused_alone_in_a_concurrent_burst() {
    let app = TestApp::spawn_with(one_big_batch).await;
    let long = incompressible(8_000);
    let poisoned: Vec<(Vec<u8>, &str)> = vec![
        (event_with("evt_p_id\u{0}", |_| {}), "`id`"),
        (
            event_with("evt_p_type", |v| v["type"] = json!("invoice.\u{0}paid")),
            "`type`",
        ),
        (
            event_with("evt_p_obj", |v| {
                v["data"]["object"]["id"] = json!("in_\u{0}")
            }),
            "`data.object.id`",
        ),
        (
            event_with("evt_p_cus", |v| {
                v["data"]["object"]["customer"] = json!("cus_\u{0}")
            }),
            "`data.object.customer`",
        ),
        (
            event_with("evt_p_acct", |v| v["account"] = json!("acct_\u{0}")),
            "`account`",
        ),
        (
            event_with("evt_p_ver", |v| v["api_version"] = json!("2026\u{0}")),
            "`api_version`",
        ),
        (
            event_with("evt_p_long_cus", |v| {
                v["data"]["object"]["customer"] = json!(long)
            }),
            "`data.object.customer`",
        ),
        (
            event_with("evt_p_long_obj", |v| {
                v["data"]["object"]["id"] = json!(long)
            }),
            "`data.object.id`",
        ),
        (
            event_with("evt_p_long_acct", |v| v["account"] = json!(long)),
            "`account`",
        ),
    ];
    let legit: Vec<Vec<u8>> = (0..40)
        .map(|i| event(&format!("evt_ok_{i}"), "invoice.paid", &format!("cus_{i}")))
        .collect();

    let legit_calls = futures::future::join_all(legit.iter().map(|b| app.post_event(b)));
    let poisoned_calls = futures::future::join_all(poisoned.iter().map(|(b, _)| app.post_event(b)));
    let (legit_answers, poisoned_answers) = tokio::join!(legit_calls, poisoned_calls);

    for (status, body) in &legit_answers {
        assert_eq!(*status, StatusCode::OK, "a legitimate delivery: {body}");
    }
    for ((status, body), (_, field)) in poisoned_answers.iter().zip(&poisoned) {
        assert_eq!(*status, StatusCode::BAD_REQUEST, "{field}: {body}");
        assert_eq!(body["error"]["code"], "invalid_payload");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{message} should name {field}");
    }
    assert_eq!(
        app.count("SELECT count(*) FROM events WHERE id LIKE 'evt_ok_%'")
            .await,
        40
    );
    assert_eq!(
        app.count("SELECT count(*) FROM jobs WHERE job_key LIKE 'evt_ok_%'")
            .await,
        40
    );
    assert_eq!(app.count("SELECT count(*) FROM events").await, 40);
}

#[tokio::test]
async fn a_batch_postgres_refuses_is_stored_again_one_delivery_at_a_time() {
    let app = TestApp::spawn_with(one_big_batch).await;
    // A refusal that no parse-time check can know about: a constraint of this database.
    sqlx::query(
        "ALTER TABLE events ADD CONSTRAINT hardening_refuses CHECK (id NOT LIKE 'evt_refused%')",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let legit: Vec<Vec<u8>> = (0..30)
        .map(|i| {
            event(
                &format!("evt_fine_{i}"),
                "invoice.paid",
                &format!("cus_{i}"),
            )
        })
        .collect();
    let refused: Vec<Vec<u8>> = (0..3)
        .map(|i| event(&format!("evt_refused_{i}"), "invoice.paid", "cus_r"))
        .collect();
    // The same legitimate event twice in the burst: once new, once a duplicate.
    let twice = event("evt_fine_0", "invoice.paid", "cus_0");

    let legit_calls =
        futures::future::join_all(legit.iter().chain([&twice]).map(|b| app.post_event(b)));
    let refused_calls = futures::future::join_all(refused.iter().map(|b| app.post_event(b)));
    let (legit_answers, refused_answers) = tokio::join!(legit_calls, refused_calls);

    for (status, body) in &legit_answers {
        assert_eq!(*status, StatusCode::OK, "a legitimate delivery: {body}");
    }
    let duplicates = legit_answers
        .iter()
        .filter(|(_, b)| b["duplicate"] == true)
        .count();
    assert_eq!(duplicates, 1, "evt_fine_0 stored once, acknowledged twice");
    for (status, body) in &refused_answers {
        assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    }
    assert_eq!(
        app.count("SELECT count(*) FROM events WHERE id LIKE 'evt_fine_%'")
            .await,
        30
    );
    assert_eq!(app.count("SELECT count(*) FROM jobs").await, 30);
}

// ---- 2. livemode and account ----

async fn event_state(app: &TestApp, id: &str) -> (String, Option<String>) {
    let (status, body) = app.get(&format!("/v1/events/{id}"), Some(API_TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (
        body["state"].as_str().unwrap().to_owned(),
        body["last_error"].as_str().map(str::to_owned),
    )
}

async fn queued(app: &TestApp, id: &str) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM jobs WHERE job_key = $1)")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_test_mode_daemon_stores_live_events_as_skipped_and_never_applies_them() {
    let app =
        TestApp::spawn_with(|s| s.stripe.api_key = Some(Secret::new("sk_test_hardening"))).await;
    let live = event_with("evt_live", |v| v["livemode"] = json!(true));
    let (status, body) = app.post_event(&live).await;
    assert_eq!(
        (status, body["duplicate"].as_bool()),
        (StatusCode::OK, Some(false))
    );
    let (status, body) = app.post_event(&live).await;
    assert_eq!(
        (status, body["duplicate"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    app.post_event(&event("evt_test", "invoice.paid", "cus_t"))
        .await;

    assert!(!queued(&app, "evt_live").await, "never queued for handlers");
    assert!(queued(&app, "evt_test").await);
    app.engine.run_until_idle().await.unwrap();
    let (state, reason) = event_state(&app, "evt_live").await;
    assert_eq!(state, "skipped");
    assert_eq!(
        reason.as_deref(),
        Some("livemode mismatch: event is live, daemon serves test mode")
    );
    assert_eq!(
        app.count("SELECT count(*) FROM events WHERE id = 'evt_live' AND finished_at IS NOT NULL")
            .await,
        1
    );
    let (state, _) = event_state(&app, "evt_test").await;
    assert_ne!(state, "received", "the test-mode event was applied");

    // A replay of the time range re-applies the daemon's own events only. (evt_test waits
    // for a retry, its customer being unknown: clear the queue so the replay can take it.)
    sqlx::query("DELETE FROM jobs")
        .execute(&app.pool)
        .await
        .unwrap();
    let test_mode = stripe_reconciler::stripe::event::Scope::default();
    let since = chrono::Utc::now() - chrono::Duration::hours(1);
    let queued_again = stripe_reconciler::ingest::replay(&app.pool, since, None, &test_mode)
        .await
        .unwrap();
    assert_eq!(queued_again, 1, "evt_test only");
    assert!(
        !queued(&app, "evt_live").await,
        "a replay does not queue it either"
    );
}

#[tokio::test]
async fn a_live_daemon_skips_test_events() {
    let app = TestApp::spawn_with(|s| s.stripe.livemode = Some(true)).await;
    app.post_event(&event("evt_t", "invoice.paid", "cus_1"))
        .await;
    app.post_event(&event_with("evt_l", |v| v["livemode"] = json!(true)))
        .await;
    let (state, reason) = event_state(&app, "evt_t").await;
    assert_eq!(state, "skipped");
    assert_eq!(
        reason.as_deref(),
        Some("livemode mismatch: event is test, daemon serves live mode")
    );
    assert!(queued(&app, "evt_l").await);
}

#[tokio::test]
async fn with_an_account_configured_other_accounts_events_are_skipped() {
    let app = TestApp::spawn_with(|s| s.stripe.account = Some("acct_ours".into())).await;
    app.post_event(&event_with("evt_other", |v| {
        v["account"] = json!("acct_theirs")
    }))
    .await;
    app.post_event(&event_with("evt_ours", |v| {
        v["account"] = json!("acct_ours")
    }))
    .await;
    app.post_event(&event("evt_own", "invoice.paid", "cus_1"))
        .await;

    let (state, reason) = event_state(&app, "evt_other").await;
    assert_eq!(state, "skipped");
    assert_eq!(
        reason.as_deref(),
        Some("account mismatch: event is for acct_theirs, daemon serves acct_ours")
    );
    assert!(!queued(&app, "evt_other").await);
    assert!(queued(&app, "evt_ours").await);
    assert!(
        queued(&app, "evt_own").await,
        "no account: the endpoint owner's own"
    );
}

// ---- 3. amounts ----

async fn track(app: &TestApp, customer: &str, value: Value) -> (StatusCode, Value) {
    app.api(
        Method::POST,
        "/v1/track",
        Some(json!({"customer_id": customer, "feature_id": "messages", "value": value})),
    )
    .await
}

async fn check(app: &TestApp, customer: &str, required: Value) -> (StatusCode, Value) {
    app.api(
        Method::POST,
        "/v1/check",
        Some(json!({"customer_id": customer, "feature_id": "messages", "required": required})),
    )
    .await
}

fn assert_refused(answer: &(StatusCode, Value), field: &str) {
    let (status, body) = answer;
    assert_eq!(*status, StatusCode::BAD_REQUEST, "{field}: {body}");
    assert_eq!(body["error"]["code"], "invalid_request", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(field), "{message} should name {field}");
}

#[tokio::test]
async fn track_and_check_refuse_negative_and_huge_amounts() {
    let app = TestApp::spawn().await;
    app.create_customer(json!({"id": "amounts"})).await;
    for value in [
        json!(-1),
        json!(i64::MIN),
        json!(1_000_000_000_001_i64),
        json!(i64::MAX),
    ] {
        assert_refused(&track(&app, "amounts", value).await, "`value`");
    }
    for required in [json!(-5), json!(1_000_000_000_001_i64)] {
        assert_refused(&check(&app, "amounts", required).await, "`required`");
    }
    let (status, customer) = app.api(Method::GET, "/v1/customers/amounts", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        customer["balances"][0]["used"], 0,
        "no credit from a refused track"
    );
    let (status, body) = track(&app, "amounts", json!(0)).await;
    assert_eq!(
        (status, body["balance"].as_i64()),
        (StatusCode::OK, Some(100))
    );
}

#[tokio::test]
async fn usage_saturates_and_the_customer_stays_readable() {
    let app = TestApp::spawn().await;
    app.create_customer(json!({"id": "heavy"})).await;
    for _ in 0..5 {
        let (status, body) = track(&app, "heavy", json!(1_000_000_000_000_i64)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // Years of maximal usage, short of the bigint limit; the API can only add more.
    sqlx::query("UPDATE balances SET used = 9223372036854775000")
        .execute(&app.pool)
        .await
        .unwrap();
    for _ in 0..3 {
        let (status, body) = track(&app, "heavy", json!(1_000_000_000_000_i64)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["balance"].as_i64(), Some(100 - i64::MAX));
    }
    let (status, customer) = app.api(Method::GET, "/v1/customers/heavy", None).await;
    assert_eq!(status, StatusCode::OK, "{customer}");
    assert_eq!(customer["balances"][0]["used"].as_i64(), Some(i64::MAX));
    let (status, body) = check(&app, "heavy", json!(1)).await;
    assert_eq!(
        (status, body["allowed"].as_bool()),
        (StatusCode::OK, Some(false)),
        "{body}"
    );
}

// ---- 4. ids in paths ----

#[tokio::test]
async fn ids_with_slashes_spaces_and_unicode_work_on_every_route() {
    let app = TestApp::spawn().await;
    for id in ["a/b", "a b", "ü-1", "50%", "x+y?z#w"] {
        let path = format!(
            "/v1/customers/{}",
            utf8_percent_encode(id, NON_ALPHANUMERIC)
        );
        let (status, body) = app.create_customer(json!({"id": id})).await;
        assert_eq!(status, StatusCode::CREATED, "{id}: {body}");
        let (status, body) = app.api(Method::GET, &path, None).await;
        assert_eq!(
            (status, body["id"].as_str()),
            (StatusCode::OK, Some(id)),
            "{body}"
        );
        let (status, body) = app
            .api(Method::PATCH, &path, Some(json!({"name": "renamed"})))
            .await;
        assert_eq!(
            (status, body["name"].as_str()),
            (StatusCode::OK, Some("renamed"))
        );
        let (status, body) = app.api(Method::DELETE, &path, None).await;
        assert_eq!((status, body["id"].as_str()), (StatusCode::OK, Some(id)));
        let (status, _) = app.api(Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id} deleted");
    }
    // A literal `/` still separates segments: `a/b` unencoded is no route.
    let (status, _) = app.api(Method::GET, "/v1/customers/a/b", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn path_ids_that_cannot_be_ids_are_400_naming_the_id() {
    let app = TestApp::spawn().await;
    let long = "x".repeat(256);
    for path in [
        "/v1/customers/a%00b".to_owned(),
        "/v1/customers/%0A".to_owned(),
        format!("/v1/customers/{long}"),
        "/v1/events/evt_%00".to_owned(),
        "/v1/attach/att_%00".to_owned(),
    ] {
        assert_refused(&app.api(Method::GET, &path, None).await, "`id`");
    }
    let answer = app.api(Method::GET, "/v1/customers/%FF%FE", None).await;
    assert_refused(&answer, "`path`");
}

// ---- 5. NUL and lengths in bodies ----

#[tokio::test]
async fn a_nul_in_any_string_of_any_body_is_a_400_naming_it() {
    let app = TestApp::spawn().await;
    app.create_customer(json!({"id": "nul"})).await;
    let nul = "a\u{0}b";
    let cases: Vec<(Method, &str, Value, &str)> = vec![
        (Method::POST, "/v1/customers", json!({"id": nul}), "`id`"),
        (
            Method::POST,
            "/v1/customers",
            json!({"id": "n", "name": nul}),
            "`name`",
        ),
        (
            Method::POST,
            "/v1/customers",
            json!({"id": "n", "email": "a\u{0}@x.test"}),
            "`email`",
        ),
        (
            Method::POST,
            "/v1/customers",
            json!({"id": "n", "fingerprint": nul}),
            "`fingerprint`",
        ),
        (
            Method::POST,
            "/v1/customers",
            json!({"id": "n", "stripe_id": "cus_\u{0}"}),
            "`stripe_id`",
        ),
        (
            Method::POST,
            "/v1/customers",
            json!({"id": "n", "metadata": {"a": {"b": nul}}}),
            "`metadata.a.b`",
        ),
        (
            Method::POST,
            "/v1/customers",
            json!({"id": "n", "metadata": {"list": [1, nul]}}),
            "`metadata.list[1]`",
        ),
        (
            Method::POST,
            "/v1/customers",
            json!({"id": "n", "metadata": {"k\u{0}": 1}}),
            "`metadata.k\\u0000`",
        ),
        (
            Method::PATCH,
            "/v1/customers/nul",
            json!({"name": nul}),
            "`name`",
        ),
        (
            Method::PATCH,
            "/v1/customers/nul",
            json!({"metadata": {"deep": {"deeper": [{"x": nul}]}}}),
            "`metadata.deep.deeper[0].x`",
        ),
        (
            Method::POST,
            "/v1/check",
            json!({"customer_id": nul, "feature_id": "messages"}),
            "`customer_id`",
        ),
        (
            Method::POST,
            "/v1/check",
            json!({"customer_id": "nul", "feature_id": nul}),
            "`feature_id`",
        ),
        (
            Method::POST,
            "/v1/track",
            json!({"customer_id": "nul", "feature_id": "messages", "idempotency_key": nul}),
            "`idempotency_key`",
        ),
        (
            Method::POST,
            "/v1/attach",
            json!({"customer_id": "nul", "plan_id": nul, "success_url": "https://a.test",
                   "cancel_url": "https://a.test"}),
            "`plan_id`",
        ),
        (
            Method::POST,
            "/v1/attach",
            json!({"customer_id": "nul", "plan_id": "pro", "success_url": "https://a.test/\u{0}",
                   "cancel_url": "https://a.test"}),
            "`success_url`",
        ),
    ];
    for (method, path, body, field) in cases {
        assert_refused(&app.api(method, path, Some(body)).await, field);
    }
    let (status, customer) = app.api(Method::GET, "/v1/customers/nul", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(customer["name"], Value::Null, "nothing was stored");
    assert_eq!(app.count("SELECT count(*) FROM customers").await, 1);
}

#[tokio::test]
async fn over_long_fields_are_a_400_naming_them() {
    let app = TestApp::spawn().await;
    app.create_customer(json!({"id": "long"})).await;
    let long = "x".repeat(3_000);
    let big: serde_json::Map<String, Value> = (0..100)
        .map(|i| (format!("key{i}"), json!("v".repeat(200))))
        .collect();
    let cases: Vec<(Method, &str, Value, &str)> = vec![
        (Method::POST, "/v1/customers", json!({"id": long}), "`id`"),
        (
            Method::POST,
            "/v1/customers",
            json!({"id": "n", "name": long}),
            "`name`",
        ),
        (
            Method::POST,
            "/v1/customers",
            json!({"id": "n", "email": format!("{long}@x.test")}),
            "`email`",
        ),
        (
            Method::POST,
            "/v1/customers",
            json!({"id": "n", "fingerprint": long}),
            "`fingerprint`",
        ),
        (
            Method::PATCH,
            "/v1/customers/long",
            json!({"metadata": big}),
            "`metadata`",
        ),
        (
            Method::POST,
            "/v1/track",
            json!({"customer_id": "long", "feature_id": "messages", "idempotency_key": long}),
            "`idempotency_key`",
        ),
        (
            Method::POST,
            "/v1/check",
            json!({"customer_id": long, "feature_id": "messages"}),
            "`customer_id`",
        ),
    ];
    for (method, path, body, field) in cases {
        assert_refused(&app.api(method, path, Some(body)).await, field);
    }
    assert_eq!(app.count("SELECT count(*) FROM usage_events").await, 0);
}

// ---- 6. /v1 body read timeout ----

#[tokio::test]
async fn a_v1_body_that_never_finishes_gets_408_and_the_connection_closes() {
    let app = TestApp::spawn_with(|s| s.http.body_read_timeout_ms = 300).await;
    for path in ["/v1/check", "/v1/customers"] {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {API_TOKEN}\r\n\
             content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"customer"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer))
            .await
            .expect("the server answers and closes the connection")
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("body_timeout"), "{answer}");
    }
}

// ---- 7. Stripe ids on input ----

#[tokio::test]
async fn stripe_ids_that_are_not_stripe_ids_are_refused() {
    let app = TestApp::spawn_with(|s| {
        s.stripe.api_key = Some(Secret::new("sk_test_hardening"));
        s.stripe.api_base = "http://127.0.0.1:9/".into();
    })
    .await;
    for stripe_id in [
        "cus_a/../../v1/subscriptions/sub_X",
        "cus_a?expand[]=x&metadata[evil]=1",
        "cus_",
        "cus_a b",
        "sub_X",
    ] {
        let answer = app
            .create_customer(json!({"id": "victim", "stripe_id": stripe_id}))
            .await;
        assert_refused(&answer, "`stripe_id`");
    }
    assert_eq!(app.count("SELECT count(*) FROM customers").await, 0);
    assert_eq!(
        app.count("SELECT count(*) FROM jobs").await,
        0,
        "nothing sent to Stripe"
    );
    let (status, body) = app
        .create_customer(json!({"id": "victim", "stripe_id": "cus_Real_123"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["stripe_id"], "cus_Real_123");
}
