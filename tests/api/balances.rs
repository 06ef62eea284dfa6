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

/// A subscription event of customer `u_life` on pro (`quantity` seats of it).
fn life_event(n: u32, event_type: &str, status: &str, cancel: bool, quantity: u32) -> Vec<u8> {
    let subscription = json!({
        "id": "sub_life", "object": "subscription", "customer": "cus_life",
        "status": status, "cancel_at_period_end": cancel, "cancel_at": null,
        "canceled_at": null, "ended_at": null, "start_date": 1_795_000_000,
        "metadata": {"customer_id": "u_life"},
        "items": {"object": "list", "data": [{
            "id": "si_life", "object": "subscription_item", "quantity": quantity,
            "current_period_start": 1_795_000_000,
            "current_period_end": 1_795_000_000 + 30 * 86_400,
            "price": {"id": "price_life", "object": "price", "metadata": {"plan_id": "pro"}}
        }]}
    });
    let created = 1_795_000_000 + i64::from(n);
    envelope(&format!("evt_life_{n}"), event_type, created, subscription)
}

type BalanceRow = (
    String,
    i64,
    i64,
    bool,
    bool,
    bool,
    Option<String>,
    Option<String>,
    Option<chrono::DateTime<chrono::Utc>>,
    bool,
);

async fn balance_rows(conn: &mut sqlx::PgConnection, customer_pk: i64) -> Vec<BalanceRow> {
    sqlx::query_as(
        "SELECT feature_id, included, used, unlimited, overage_allowed, subscription_backed,
                reset, reset_plan_id, next_reset_at, suspended
         FROM balances WHERE customer_pk = $1 ORDER BY feature_id",
    )
    .bind(customer_pk)
    .fetch_all(conn)
    .await
    .unwrap()
}

/// A new customer on the free plan (its pk), and the catalog to provision it from.
async fn free_customer_to_provision(
    app: &TestApp,
    id: &str,
) -> (i64, stripe_reconciler::catalog::Catalog) {
    free_customer(app, id).await;
    let catalog = stripe_reconciler::catalog::Catalog::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/catalog.example.toml"),
    )
    .unwrap();
    let pk: i64 = sqlx::query_scalar("SELECT pk FROM customers WHERE id = $1")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    (pk, catalog)
}

#[tokio::test]
async fn after_each_state_of_a_subscription_the_balances_are_what_provisioning_afresh_makes() {
    // A subscription state provisions the balances only when its held plans grant something
    // else than the rows hold (most states change no allowance): after each event, with
    // usage between them, provisioning the customer afresh changes nothing.
    let app = TestApp::spawn().await;
    let (pk, catalog) = free_customer_to_provision(&app, "u_life").await;
    let states = [
        ("customer.subscription.created", "incomplete", false, 1),
        ("customer.subscription.updated", "active", false, 1),
        ("customer.subscription.updated", "active", false, 3),
        ("customer.subscription.updated", "past_due", false, 3),
        ("customer.subscription.updated", "active", true, 3),
        ("customer.subscription.updated", "unpaid", true, 3),
        ("customer.subscription.deleted", "canceled", true, 3),
    ];
    let mut seen = Vec::new();
    for (n, (event_type, status, cancel, quantity)) in states.into_iter().enumerate() {
        let body = life_event(n as u32, event_type, status, cancel, quantity);
        assert_eq!(app.post_event(&body).await.0, StatusCode::OK);
        app.engine.run_until_idle().await.unwrap();
        let track = json!({"customer_id": "u_life", "feature_id": "messages", "value": 7});
        let (tracked, body) = app.api(Method::POST, "/v1/track", Some(track)).await;
        assert_eq!(tracked, StatusCode::OK, "{body}");

        let mut tx = app.pool.begin().await.unwrap();
        let applied = balance_rows(&mut tx, pk).await;
        stripe_reconciler::store::balances::provision(&mut tx, &catalog, pk)
            .await
            .unwrap();
        let afresh = balance_rows(&mut tx, pk).await;
        tx.rollback().await.unwrap();
        assert_eq!(
            applied, afresh,
            "after the {status} state (quantity {quantity})"
        );
        seen.push(applied);
    }
    // The states did move the balances: pro's allowance, its seats by quantity, and back.
    seen.dedup();
    assert!(seen.len() >= 3, "{seen:?}");
}

#[tokio::test]
async fn provisioning_one_customer_is_planned_once_for_the_connection() {
    // The one-at-a-time path provisions one customer at a time. Named as `= ANY($1)`, the
    // statement's generic plan expected ten customers and never won against a custom one, so
    // every call was planned afresh (~0.2 ms; a steady run provisions on about half of its
    // subscription events).
    let app = TestApp::spawn().await;
    let (pk, catalog) = free_customer_to_provision(&app, "u_plan").await;
    // A store of some size, its statistics known (on a near-empty table any plan is cheap).
    sqlx::query(
        "WITH c AS (INSERT INTO customers (id, name)
                    SELECT 'u_many_' || g, 'n' FROM generate_series(1, 3000) g RETURNING pk)
         INSERT INTO balances (customer_pk, feature_id, included)
         SELECT pk, f, 10 FROM c, unnest(ARRAY['messages', 'seats', 'exports']) f",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE balances")
        .execute(&app.pool)
        .await
        .unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    for _ in 0..12 {
        stripe_reconciler::store::balances::provision(&mut conn, &catalog, pk)
            .await
            .unwrap();
    }
    let (generic, custom): (i64, i64) = sqlx::query_as(
        "SELECT generic_plans, custom_plans FROM pg_prepared_statements
         WHERE statement LIKE 'WITH granted AS%'",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    // Twelve here, and the customer's creation may have provisioned on this connection too.
    assert!(
        custom + generic >= 12,
        "{generic} generic, {custom} custom plans"
    );
    assert!(
        generic >= 6,
        "planned afresh on most calls: {generic} generic, {custom} custom plans"
    );
    assert_eq!(
        messages(&app, "u_plan").await["included"],
        100,
        "still provisioned"
    );
}
