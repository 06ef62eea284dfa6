//! Discounts in any delivery order: the events the fake Stripe sent for a customer given two
//! rewards (one used up at the first renewal, one forever), delivered to a fresh daemon in
//! order and then shuffled with redeliveries, end with the same discounts, invoices and
//! timeline; and the daemon that redeemed the rewards itself (its jobs recorded Stripe's
//! answers) shows what the events alone show.

use hyper::{Method, StatusCode};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::rewards::{attach, give};
use crate::stripe_side::World;
use crate::stripe_side::settle;

/// How many shuffled deliveries to check (`REWARD_SHUFFLES` to change).
fn shuffles() -> u64 {
    std::env::var("REWARD_SHUFFLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(6)
}

const CUSTOMER: &str = "u_conv";

/// Runs the story against the fake; returns the events it sent about the customer (and the
/// coupons), in order, the Stripe customer id and the view the daemon ended with.
async fn story() -> (Vec<Value>, String, Value) {
    let w = World::new().await;
    let stripe_id = w.paying_customer(CUSTOMER).await;
    let done = attach(&w, CUSTOMER, "pro", json!({"reward": "welcome"})).await;
    assert_eq!(done["state"], "active", "{done}");
    let sub = done["stripe_subscription_id"].as_str().unwrap().to_owned();
    let (status, _) = give(&w, CUSTOMER, json!({"reward": "loyalty"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    settle(&w).await;
    for _ in 0..2 {
        // A renewal comes a period later, not within the second of the invoice before it.
        w.stripe.advance_clock(std::time::Duration::from_secs(60));
        let invoice = w.stripe.renew(&sub).await.unwrap();
        w.stripe.charge_invoice(&invoice).await.unwrap();
    }
    settle(&w).await;
    let events: Vec<Value> = w
        .stripe
        .events()
        .into_iter()
        .filter(|e| {
            let object = &e["data"]["object"];
            object["customer"] == stripe_id.as_str()
                || object["id"] == stripe_id.as_str()
                || e["type"].as_str().is_some_and(|t| t.starts_with("coupon."))
        })
        .collect();
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    for expected in [
        "coupon.created",
        "customer.discount.created",
        "customer.discount.deleted",
        "invoice.paid",
    ] {
        assert!(types.contains(&expected), "{expected} in {types:?}");
    }
    let view = w.customer(CUSTOMER).await;
    (events, stripe_id, view)
}

/// A daemon without Stripe whose customer is linked to `stripe_id`, fed `deliveries` one at
/// a time, drained after each; what it ends with.
async fn replay(deliveries: &[&Value], stripe_id: &str) -> Value {
    let app = TestApp::spawn().await;
    let (status, _) = app.create_customer(json!({"id": CUSTOMER})).await;
    assert_eq!(status, StatusCode::CREATED);
    sqlx::query("UPDATE customers SET stripe_id = $1 WHERE id = $2")
        .bind(stripe_id)
        .bind(CUSTOMER)
        .execute(&app.pool)
        .await
        .unwrap();
    for event in deliveries {
        let (status, answer) = app.post_event(event.to_string().as_bytes()).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        app.engine.run_until_idle().await.unwrap();
    }
    let outcome = outcome(&app).await;
    app.shutdown.cancel();
    outcome
}

/// What must converge: the discounts that apply, the invoices with what they took off, and
/// the timeline's reward entries (which name the reward only when the coupon was known
/// when the entry was written, so that is left out here).
async fn outcome(app: &TestApp) -> Value {
    let (status, view) = app
        .api(Method::GET, &format!("/v1/customers/{CUSTOMER}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let mut invoices = Vec::new();
    for invoice in view["invoices"].as_array().unwrap() {
        let id = invoice["stripe_id"].as_str().unwrap();
        let path = format!("/v1/customers/{CUSTOMER}/invoices/{id}");
        let (_, detail) = app.api(Method::GET, &path, None).await;
        invoices.push(json!({
            "id": id, "status": detail["status"], "total": detail["total"],
            "subtotal": detail["subtotal"], "total_discount": detail["total_discount"],
            "discounts": detail["discounts"],
            "line_discounts": detail["lines"].as_array().map(|lines| {
                lines.iter().map(|l| l["discount"].clone()).collect::<Vec<_>>()
            }),
        }));
    }
    let path = format!("/v1/customers/{CUSTOMER}/timeline?limit=100");
    let (_, page) = app.api(Method::GET, &path, None).await;
    let mut rewards: Vec<Value> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"].as_str().is_some_and(|k| k.starts_with("reward.")))
        .map(|e| json!([e["kind"], e["at"], e["discount_id"], e["coupon_id"]]))
        .collect();
    rewards.sort_by_key(Value::to_string);
    json!({
        "discounts": view["discounts"], "invoices": invoices, "timeline": rewards,
        "plans": view["products"].as_array().unwrap().iter()
            .map(|p| json!([p["plan_id"], p["status"]])).collect::<Vec<_>>(),
    })
}

#[tokio::test]
async fn discount_events_converge_in_any_order() {
    let (events, stripe_id, live) = story().await;
    let in_order: Vec<&Value> = events.iter().collect();
    let expected = replay(&in_order, &stripe_id).await;

    // What the events alone say is what the daemon that made the discounts shows.
    assert_eq!(expected["discounts"], live["discounts"], "{expected:#}");
    let discounts = expected["discounts"].as_array().unwrap();
    assert_eq!(
        discounts.len(),
        1,
        "the once reward was used up: {expected:#}"
    );
    assert_eq!(discounts[0]["reward_id"], "loyalty");
    assert_eq!(discounts[0]["amount_off"], 500);
    assert_eq!(discounts[0]["plan_id"], "pro");
    let totals: Vec<(i64, i64)> = expected["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["total"].as_i64().unwrap(),
                i["total_discount"].as_i64().unwrap(),
            )
        })
        .collect();
    // Newest first: two renewals with $5 off, the first invoice with 20 % off.
    assert_eq!(
        totals,
        [(1500, 500), (1500, 500), (1600, 400)],
        "{expected:#}"
    );
    let kinds: Vec<&str> = expected["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e[0].as_str())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "reward.applied").count(),
        2,
        "{expected:#}"
    );
    assert_eq!(kinds.iter().filter(|k| **k == "reward.removed").count(), 1);

    for seed in 0..shuffles() {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut deliveries = in_order.clone();
        deliveries.shuffle(&mut rng);
        // Redeliveries, anywhere.
        for _ in 0..3 {
            let again = deliveries[rng.random_range(0..deliveries.len())];
            let at = rng.random_range(0..=deliveries.len());
            deliveries.insert(at, again);
        }
        let got = replay(&deliveries, &stripe_id).await;
        assert_eq!(got, expected, "seed {seed}");
    }
}
