//! Stripe's own example objects (from its OpenAPI repository, `fixtures/stripe-openapi/`) in
//! every event type the daemon applies: none may go dead. They carry `null` wherever the spec
//! allows it, which our hand-written fixtures never did.

use hyper::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

fn stripe_objects() -> Value {
    let path = fixtures_dir().join("stripe-openapi/objects.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The example object an event type carries.
fn object_for(objects: &Value, event_type: &str) -> Value {
    let name = if event_type.starts_with("customer.subscription.") {
        "subscription"
    } else if event_type.starts_with("customer.discount.") {
        if event_type.ends_with(".deleted") {
            "deleted_discount"
        } else {
            "discount"
        }
    } else if event_type.starts_with("checkout.session.") {
        "checkout.session"
    } else if event_type.starts_with("invoice.") {
        "invoice"
    } else if event_type.starts_with("coupon.") {
        if event_type.ends_with(".deleted") {
            "deleted_coupon"
        } else {
            "coupon"
        }
    } else if event_type == "customer.deleted" {
        "deleted_customer"
    } else if event_type.starts_with("customer.") {
        "customer"
    } else {
        panic!("no example object for {event_type}")
    };
    objects[name].clone()
}

fn wrap(n: usize, event_type: &str, object: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": format!("evt_openapi_{n:03}"),
        "object": "event",
        "api_version": "2026-09-30.endive",
        "created": 1_795_000_000 + n as i64,
        "livemode": false,
        "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null },
        "type": event_type,
        "data": { "object": object }
    }))
    .unwrap()
}

/// Every event type the daemon applies, each carrying Stripe's own example object, as is and
/// linked to one of our customers through `metadata.customer_id`: each event is applied or
/// skipped, never dead.
#[tokio::test]
async fn stripes_own_example_objects_never_make_an_event_dead() {
    let app = TestApp::spawn().await;
    let (status, _) = app.create_customer(json!({"id": "user_fx"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let objects = stripe_objects();
    let types = stripe_reconciler::appliers::event_types();
    assert!(types.len() >= 20, "{types:?}");
    let mut n = 0;
    for linked in [false, true] {
        for event_type in &types {
            let mut object = object_for(&objects, event_type);
            if linked && object["metadata"].is_object() {
                object["metadata"]["customer_id"] = json!("user_fx");
            }
            n += 1;
            let (status, answer) = app.post_event(&wrap(n, event_type, object)).await;
            assert_eq!(status, StatusCode::OK, "{event_type}: {answer}");
            app.engine.run_until_idle().await.unwrap();
        }
    }
    let dead: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT id, type, last_error FROM events WHERE state = 'dead' ORDER BY id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert!(dead.is_empty(), "dead events: {dead:#?}");
    let finished = app
        .count("SELECT count(*) FROM events WHERE state IN ('applied', 'skipped')")
        .await;
    assert_eq!(finished, n as i64, "every event finished");
}
