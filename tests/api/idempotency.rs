//! Issue 24, defects 6 and 7: an idempotency key answers the first request's result only for
//! the same request; reused for another it is an `idempotency_error` (400, as Stripe does),
//! and two requests racing with one key never make a 500.

use futures::future::join_all;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::rewards::{give, subscribed};
use crate::stripe_side::World;
use crate::stripe_side::settle;

fn assert_key_reused(status: StatusCode, answer: &Value, what: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {answer}");
    assert_eq!(
        answer["error"]["code"], "idempotency_error",
        "{what}: {answer}"
    );
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("use a new key"),
        "{what}: {answer}"
    );
}

async fn balance_edit(app: &TestApp, body: Value) -> (StatusCode, Value) {
    app.api(Method::POST, "/v1/balances", Some(body)).await
}

#[tokio::test]
async fn a_balance_key_reused_for_another_edit_is_an_idempotency_error() {
    let app = TestApp::spawn().await;
    let (status, _) = app.create_customer(json!({"id": "u_k7"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let first = json!({"customer_id": "u_k7", "feature_id": "messages", "op": "grant",
                       "amount": 10, "reason": "r1", "idempotency_key": "k7"});
    let (status, answer) = balance_edit(&app, first.clone()).await;
    assert_eq!(
        (status, answer["balance"].as_i64()),
        (StatusCode::OK, Some(110))
    );
    for (field, value) in [
        ("amount", json!(11)),
        ("op", json!("deduct")),
        ("reason", json!("r2")),
    ] {
        let mut other = first.clone();
        other[field] = value;
        let (status, answer) = balance_edit(&app, other).await;
        assert_key_reused(status, &answer, field);
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(field),
            "{answer}"
        );
    }
    let (status, again) = balance_edit(&app, first).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        (again["balance"].as_i64(), &again["duplicate"]),
        (Some(110), &json!(true))
    );
}

/// Defect 6: two requests with one key for two features, at once, many times over: one is
/// applied, the other is refused with `idempotency_error`, never a 500.
#[tokio::test]
async fn one_key_for_two_features_at_once_applies_one_and_refuses_the_other() {
    let app = TestApp::spawn().await;
    let (status, _) = app.create_customer(json!({"id": "u_k6"})).await;
    assert_eq!(status, StatusCode::CREATED);
    // A second balance to edit (as a plan granting seats would make).
    sqlx::query(
        "INSERT INTO balances (customer_pk, feature_id, included, reset)
         SELECT pk, 'seats', 5, 'never' FROM customers WHERE id = 'u_k6'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    for round in 0..20 {
        let edits = ["messages", "seats"].map(|feature| {
            balance_edit(
                &app,
                json!({"customer_id": "u_k6", "feature_id": feature, "op": "grant",
                       "amount": 1, "idempotency_key": format!("race-{round}")}),
            )
        });
        let mut answers = join_all(edits).await;
        answers.sort_by_key(|(status, _)| *status);
        assert_eq!(answers[0].0, StatusCode::OK, "round {round}: {answers:?}");
        assert_key_reused(answers[1].0, &answers[1].1, "the other feature");
    }
    let applied = app.count("SELECT count(*) FROM balance_edits").await;
    assert_eq!(applied, 20);
}

#[tokio::test]
async fn plan_change_and_reward_keys_reused_for_another_request_are_refused() {
    let w = World::new().await;
    subscribed(&w, "u_k7c", "pro").await;
    let post = |path: &'static str, body: Value| w.app.api(Method::POST, path, Some(body));

    let quantity = json!({"customer_id": "u_k7c", "plan_id": "pro", "quantity": 2,
                          "idempotency_key": "q-1"});
    let (status, first) = post("/v1/quantity", quantity.clone()).await;
    assert!(status.is_success(), "{first}");
    settle(&w).await;
    let mut other = quantity.clone();
    other["quantity"] = json!(3);
    let (status, answer) = post("/v1/quantity", other).await;
    assert_key_reused(status, &answer, "another quantity");
    // The same key on another endpoint is another request too.
    let cancel = json!({"customer_id": "u_k7c", "plan_id": "pro", "idempotency_key": "q-1"});
    let (status, answer) = post("/v1/cancel", cancel).await;
    assert_key_reused(status, &answer, "a cancel with a quantity's key");
    let (status, again) = post("/v1/quantity", quantity).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        (&again["id"], &again["duplicate"]),
        (&first["id"], &json!(true))
    );

    let cancel = json!({"customer_id": "u_k7c", "plan_id": "pro", "at": "period_end",
                        "idempotency_key": "c-1"});
    let (status, first) = post("/v1/cancel", cancel.clone()).await;
    assert!(status.is_success(), "{first}");
    settle(&w).await;
    let mut now = cancel.clone();
    now["at"] = json!("now");
    let (status, answer) = post("/v1/cancel", now).await;
    assert_key_reused(
        status,
        &answer,
        "a cancel now after one at the period's end",
    );
    let uncancel = json!({"customer_id": "u_k7c", "plan_id": "pro", "idempotency_key": "c-1"});
    let (status, uncancel) = post("/v1/uncancel", uncancel).await;
    assert_key_reused(status, &uncancel, "an uncancel with a cancel's key");
    let (status, again) = post("/v1/cancel", cancel).await;
    assert_eq!(
        (status, &again["id"]),
        (StatusCode::OK, &first["id"]),
        "{again}"
    );

    let reward = json!({"reward": "loyalty", "idempotency_key": "r-1"});
    let (status, first) = give(&w, "u_k7c", reward.clone()).await;
    assert!(status.is_success(), "{first}");
    settle(&w).await;
    let (status, answer) = give(
        &w,
        "u_k7c",
        json!({"reward": "welcome", "idempotency_key": "r-1"}),
    )
    .await;
    assert_key_reused(status, &answer, "another reward");
    let (status, again) = give(&w, "u_k7c", reward).await;
    assert_eq!(
        (status, &again["id"]),
        (StatusCode::OK, &first["id"]),
        "{again}"
    );
}
