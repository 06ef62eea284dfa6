//! `POST /v1/balances`: grant, set and deduct, once per idempotency key, until the feature's
//! next reset; refusals name the field; concurrent edits both apply.

use futures::future::join_all;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

async fn edit(app: &TestApp, body: Value) -> (StatusCode, Value) {
    app.api(Method::POST, "/v1/balances", Some(body)).await
}

async fn messages(app: &TestApp, customer: &str) -> Value {
    let (_, view) = app
        .api(Method::GET, &format!("/v1/customers/{customer}"), None)
        .await;
    view["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["feature_id"] == "messages")
        .cloned()
        .unwrap()
}

async fn free_customer(app: &TestApp, id: &str) {
    let (status, _) = app.create_customer(json!({"id": id})).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn grant_set_and_deduct_move_the_balance_and_check_follows() {
    let app = TestApp::spawn().await;
    free_customer(&app, "u_bal").await;
    let track = json!({"customer_id": "u_bal", "feature_id": "messages", "value": 30});
    app.api(Method::POST, "/v1/track", Some(track)).await;
    // The free plan includes 100; 30 used: 70 left.
    let (status, granted) = edit(
        &app,
        json!({"customer_id": "u_bal", "feature_id": "messages", "op": "grant", "amount": 50,
               "reason": "goodwill after the outage", "idempotency_key": "k1"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{granted}");
    assert_eq!(granted["balance"], 120);
    assert_eq!(
        granted["included"], 100,
        "the plan's allowance is unchanged"
    );
    assert_eq!(granted["adjustment"], 50);
    assert_eq!(granted["duplicate"], false);

    let (_, deducted) = edit(
        &app,
        json!({"customer_id": "u_bal", "feature_id": "messages", "op": "deduct", "amount": 20}),
    )
    .await;
    assert_eq!(deducted["balance"], 100);

    let (_, set) = edit(
        &app,
        json!({"customer_id": "u_bal", "feature_id": "messages", "op": "set", "amount": 5}),
    )
    .await;
    assert_eq!(set["balance"], 5, "{set}");
    assert_eq!(messages(&app, "u_bal").await["balance"], 5);
    let check = json!({"customer_id": "u_bal", "feature_id": "messages", "required": 6});
    let (_, answer) = app.api(Method::POST, "/v1/check", Some(check)).await;
    assert_eq!(answer["allowed"], false, "{answer}");

    let edits: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT op, balance_after, actor FROM balance_edits e
         JOIN customers c ON c.pk = e.customer_pk WHERE c.id = 'u_bal' ORDER BY e.id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        edits,
        [
            ("grant".to_owned(), 120, "api".to_owned()),
            ("deduct".to_owned(), 100, "api".to_owned()),
            ("set".to_owned(), 5, "api".to_owned()),
        ]
    );
}

#[tokio::test]
async fn the_same_idempotency_key_applies_once() {
    let app = TestApp::spawn().await;
    free_customer(&app, "u_once").await;
    let body = json!({"customer_id": "u_once", "feature_id": "messages", "op": "grant",
                      "amount": 10, "idempotency_key": "grant-1"});
    let (_, first) = edit(&app, body.clone()).await;
    let (status, again) = edit(&app, body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["balance"], 110);
    assert_eq!(again["balance"], 110, "{again}");
    assert_eq!(again["duplicate"], true);
}

#[tokio::test]
async fn two_concurrent_edits_both_apply() {
    let app = TestApp::spawn().await;
    free_customer(&app, "u_race").await;
    let grants = (0..2).map(|n| {
        edit(
            &app,
            json!({"customer_id": "u_race", "feature_id": "messages", "op": "grant",
                   "amount": 7, "idempotency_key": format!("race-{n}")}),
        )
    });
    for (status, answer) in join_all(grants).await {
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    assert_eq!(messages(&app, "u_race").await["balance"], 114);
}

#[tokio::test]
async fn bad_input_is_a_400_naming_the_field_and_unknowns_are_404s() {
    let app = TestApp::spawn().await;
    free_customer(&app, "u_bad").await;
    let base =
        json!({"customer_id": "u_bad", "feature_id": "messages", "op": "grant", "amount": 1});
    let cases = [
        ("op", json!("double"), StatusCode::BAD_REQUEST, "op"),
        ("amount", json!(-5), StatusCode::BAD_REQUEST, "amount"),
        (
            "customer_id",
            json!("nobody"),
            StatusCode::NOT_FOUND,
            "customer_not_found",
        ),
        (
            "feature_id",
            json!("nope"),
            StatusCode::NOT_FOUND,
            "feature_not_found",
        ),
        // The free plan does not grant seats.
        (
            "feature_id",
            json!("seats"),
            StatusCode::NOT_FOUND,
            "balance_not_found",
        ),
    ];
    for (field, value, status, named) in cases {
        let mut body = base.clone();
        body[field] = value;
        let (got, answer) = edit(&app, body).await;
        assert_eq!(got, status, "{field}: {answer}");
        assert!(answer.to_string().contains(named), "{field}: {answer}");
    }
    assert_eq!(
        messages(&app, "u_bad").await["balance"],
        100,
        "nothing changed"
    );
}

#[tokio::test]
async fn an_edit_lasts_until_the_features_next_reset() {
    let app = TestApp::spawn().await;
    free_customer(&app, "u_reset").await;
    edit(
        &app,
        json!({"customer_id": "u_reset", "feature_id": "messages", "op": "grant", "amount": 40}),
    )
    .await;
    assert_eq!(messages(&app, "u_reset").await["balance"], 140);
    // The month is over (the free plan resets by the clock).
    sqlx::query(
        "UPDATE balances SET next_reset_at = now() - interval '1 second'
         WHERE customer_pk = (SELECT pk FROM customers WHERE id = 'u_reset')",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let check = json!({"customer_id": "u_reset", "feature_id": "messages"});
    let (_, answer) = app.api(Method::POST, "/v1/check", Some(check)).await;
    assert_eq!(
        answer["balance"], 100,
        "the grant ended with the period: {answer}"
    );
    assert_eq!(messages(&app, "u_reset").await["adjustment"], 0);
}
