//! Our cancel / uncancel / quantity calls interleave with the webhooks Stripe sends back about
//! them, delivered late, partly, shuffled and twice: once every event has arrived, the
//! customer's plan, seats and invoices are what Stripe has, and delivering everything again
//! in another order changes nothing.
//!
//! A trial's life (issue 17) converges the same way: a trial without a card, Stripe's
//! notice three days before its end, a card added or not, and the end (charged, or the
//! subscription canceled).
//!
//! Each operation moves the fake's clock on by two seconds, so Stripe's events about two
//! operations never share a second (within one second Stripe's `created` cannot order them:
//! see the README's "Ordering" notes).

use std::collections::HashSet;
use std::time::Duration;

use fake_stripe::Delivery;
use hyper::{Method, StatusCode};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

use crate::stripe_side::World;

#[derive(Debug, Clone)]
enum Op {
    CancelAtPeriodEnd,
    Uncancel,
    Quantity { quantity: i64, prorate: bool },
}

#[derive(Debug, Clone)]
struct Case {
    ops: Vec<Op>,
    /// End with a cancel `now` (the subscription ends; the default plan takes over).
    end_now: bool,
    /// Drives which pending events arrive after each operation, and their order.
    seed: u64,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::CancelAtPeriodEnd),
        Just(Op::Uncancel),
        (1i64..6, any::<bool>()).prop_map(|(quantity, prorate)| Op::Quantity { quantity, prorate }),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(op(), 1..5),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(ops, end_now, seed)| Case { ops, end_now, seed })
}

/// A small deterministic generator (xorshift), seeded by the case.
pub(crate) struct Dice(pub(crate) u64);

impl Dice {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

/// Delivers the events Stripe made that have not been delivered yet: `all`, or a random
/// part of them, in a random order.
async fn deliver(w: &World, delivered: &mut HashSet<String>, dice: &mut Dice, all: bool) {
    let mut pending: Vec<Value> = w
        .stripe
        .events()
        .into_iter()
        .filter(|e| !delivered.contains(e["id"].as_str().unwrap()))
        .collect();
    dice.shuffle(&mut pending);
    for event in pending {
        if !all && dice.next().is_multiple_of(2) {
            continue;
        }
        let (status, answer) = w.app.post_event(event.to_string().as_bytes()).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        delivered.insert(event["id"].as_str().unwrap().to_owned());
        w.drain().await;
    }
}

async fn run(case: &Case, n: usize) -> Result<(), TestCaseError> {
    let w = World::new().await;
    w.stripe.set_delivery(Delivery::Drop);
    let customer = format!("u_conv_{n}");
    w.paying_customer(&customer).await;
    let attach = json!({"customer_id": customer, "plan_id": "team", "quantity": 2,
                        "success_url": "https://a.test/", "cancel_url": "https://a.test/"});
    let (status, answer) = w.app.api(Method::POST, "/v1/attach", Some(attach)).await;
    prop_assert!(status.is_success(), "{}", answer);
    w.drain().await;
    let attach = w.attach_state(answer["id"].as_str().unwrap()).await;
    prop_assert_eq!(&attach["state"], "active");
    let sub = attach["stripe_subscription_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut dice = Dice(case.seed | 1);
    let mut delivered = HashSet::new();
    let mut requests: Vec<(&str, Value)> = case
        .ops
        .iter()
        .map(|op| match op {
            Op::CancelAtPeriodEnd => ("/v1/cancel", json!({"at": "period_end"})),
            Op::Uncancel => ("/v1/uncancel", json!({})),
            Op::Quantity { quantity, prorate } => (
                "/v1/quantity",
                json!({"quantity": quantity, "prorate": prorate}),
            ),
        })
        .collect();
    if case.end_now {
        requests.push(("/v1/cancel", json!({"at": "now"})));
    }
    for (route, mut body) in requests {
        w.stripe.advance_clock(Duration::from_secs(2));
        body["customer_id"] = customer.clone().into();
        body["plan_id"] = "team".into();
        let (status, answer) = w.app.api(Method::POST, route, Some(body)).await;
        // Refusals are fine (uncancel of a plan not set to cancel, say): the store said so.
        prop_assert!(
            status.is_success() || status == StatusCode::CONFLICT,
            "{} {}: {}",
            route,
            status,
            answer
        );
        w.drain().await;
        deliver(&w, &mut delivered, &mut dice, false).await;
    }
    deliver(&w, &mut delivered, &mut dice, true).await;
    let converged = w.customer(&customer).await;
    prop_assert_eq!(
        summary(&converged),
        expected_products(&w, &sub),
        "{:#}",
        converged
    );
    check_balances_and_invoices(&w, &converged, &sub)?;

    // Everything again, in another order: nothing moves.
    delivered.clear();
    deliver(&w, &mut delivered, &mut dice, true).await;
    let again = w.customer(&customer).await;
    prop_assert_eq!(&again, &converged);
    Ok(())
}

/// The plans Stripe's subscription says the customer has.
pub(crate) fn expected_products(w: &World, sub: &str) -> Value {
    let stripe = w.stripe.subscriptions();
    let stripe = stripe.iter().find(|s| s["id"] == sub).unwrap();
    if stripe["status"] == "canceled" {
        return json!([{ "plan_id": "free", "status": "active" }]);
    }
    let item = &stripe["items"]["data"][0];
    json!([{
        "plan_id": "team", "status": stripe["status"],
        "quantity": item["quantity"],
        "cancel_at_period_end": stripe["cancel_at_period_end"],
    }])
}

fn check_balances_and_invoices(w: &World, view: &Value, sub: &str) -> Result<(), TestCaseError> {
    let seats = view["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["feature_id"] == "seats")
        .map(|b| b["included"].clone());
    let stripe = w.stripe.subscriptions();
    let stripe = stripe.iter().find(|s| s["id"] == sub).unwrap();
    let expected_seats =
        (stripe["status"] != "canceled").then(|| stripe["items"]["data"][0]["quantity"].clone());
    prop_assert_eq!(seats, expected_seats, "seats: 1 per unit of team");
    check_invoices(w, view)
}

/// The view's products as [`expected_products`] shapes them.
pub(crate) fn summary(view: &Value) -> Value {
    view["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let mut s = json!({"plan_id": p["plan_id"], "status": p["status"]});
            if p["plan_id"] == "team" {
                s["quantity"] = p["quantity"].clone();
                s["cancel_at_period_end"] = p["cancel_at_period_end"].clone();
            }
            s
        })
        .collect()
}

#[test]
fn plan_changes_converge_with_stripes_webhooks_in_any_order() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut runner = runner();
    let n = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&case(), |c| {
            let n = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            rt.block_on(run(&c, n))
        })
        .unwrap();
}

/// A customer without a card takes `starter`'s trial (no card needed), adds a card during
/// it or not, and the trial ends; webhooks arrive as in [`run`].
async fn trial_life(adds_card: bool, seed: u64, n: usize) -> Result<(), TestCaseError> {
    let w = World::new().await;
    w.stripe.set_delivery(Delivery::Drop);
    let customer = format!("u_trial_{n}");
    let (status, _) = w
        .app
        .create_customer(json!({"id": customer, "create_in_stripe": true}))
        .await;
    prop_assert_eq!(status, StatusCode::CREATED);
    w.drain().await;
    let attach = json!({"customer_id": customer, "plan_id": "starter",
                        "success_url": "https://a.test/", "cancel_url": "https://a.test/"});
    let (_, answer) = w.app.api(Method::POST, "/v1/attach", Some(attach)).await;
    w.drain().await;
    let attach = w.attach_state(answer["id"].as_str().unwrap()).await;
    prop_assert_eq!(&attach["trial_days"], 14, "{}", attach);
    let sub = attach["stripe_subscription_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut dice = Dice(seed | 1);
    let mut delivered = HashSet::new();
    deliver(&w, &mut delivered, &mut dice, false).await;
    w.stripe.advance_clock(Duration::from_secs(11 * 86_400));
    w.stripe.trial_will_end(&sub).await.unwrap();
    deliver(&w, &mut delivered, &mut dice, false).await;
    if adds_card {
        let stripe_id = w.customer(&customer).await["stripe_id"]
            .as_str()
            .unwrap()
            .to_owned();
        w.stripe.set_default_payment_method(&stripe_id);
    }
    w.stripe.advance_clock(Duration::from_secs(3 * 86_400));
    w.stripe.end_trial(&sub).await.unwrap();
    deliver(&w, &mut delivered, &mut dice, true).await;
    let converged = w.customer(&customer).await;
    let stripe = w.stripe.subscriptions();
    let stripe = stripe.iter().find(|s| s["id"] == sub.as_str()).unwrap();
    let expected = if adds_card {
        prop_assert_eq!(&stripe["status"], "active");
        json!([{ "plan_id": "starter", "status": "active" }])
    } else {
        prop_assert_eq!(&stripe["status"], "canceled");
        json!([{ "plan_id": "free", "status": "active" }])
    };
    let plans: Vec<Value> = converged["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| json!({"plan_id": p["plan_id"], "status": p["status"]}))
        .collect();
    prop_assert_eq!(Value::from(plans), expected, "{:#}", converged);
    check_invoices(&w, &converged)?;
    delivered.clear();
    deliver(&w, &mut delivered, &mut dice, true).await;
    prop_assert_eq!(&w.customer(&customer).await, &converged);
    Ok(())
}

/// The invoices of the view are Stripe's (ids and statuses).
fn check_invoices(w: &World, view: &Value) -> Result<(), TestCaseError> {
    let mut ours: Vec<(String, String)> = view["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["stripe_id"].as_str().unwrap().to_owned(),
                i["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut theirs: Vec<(String, String)> = w
        .stripe
        .invoices()
        .iter()
        .filter(|i| i["status"] != "draft")
        .map(|i| {
            (
                i["id"].as_str().unwrap().to_owned(),
                i["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    ours.sort();
    theirs.sort();
    prop_assert_eq!(ours, theirs);
    Ok(())
}

#[test]
fn a_trials_life_converges_with_stripes_webhooks_in_any_order() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut runner = runner();
    let n = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&(any::<bool>(), any::<u64>()), |(adds_card, seed)| {
            let n = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            rt.block_on(trial_life(adds_card, seed, n))
        })
        .unwrap();
}

/// Each case builds a world of its own: 6 cases by default (`PROPTEST_CASES` to change).
fn runner() -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(6);
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}
