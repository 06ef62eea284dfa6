//! The same-second rule as a property (issue 24): our API's plan changes, changes made in
//! Stripe's dashboard and our own edits of the customer's name, made as fast as they answer
//! (so several share Stripe's one-second `created`), with Stripe's webhooks delivered late,
//! partly, shuffled, twice or not at all, and the tie reads the daemon makes on the way. Once
//! the events that were dropped are caught up and the queue is quiet, the customer's plan,
//! status, quantity, cancel flag, name and email equal Stripe's.
//!
//! Unlike `plan_change_convergence.rs`, the fake's clock is not moved on between operations:
//! the ties are the point.

use std::collections::HashSet;

use fake_stripe::Delivery;
use hyper::{Method, StatusCode};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

use crate::plan_change_convergence::{Dice, expected_products, summary};
use crate::stripe_side::World;

#[derive(Debug, Clone)]
enum Op {
    /// Ours, through the API (a plan-change job that calls Stripe).
    CancelAtPeriodEnd,
    Uncancel,
    Quantity(i64),
    /// In Stripe's dashboard, behind our back.
    /// Set to cancel at a date a month away.
    DashboardCancelAt,
    DashboardName(u8),
    /// Our `PATCH` of the name, pushed to Stripe.
    OurName(u8),
}

#[derive(Debug, Clone)]
struct Case {
    ops: Vec<Op>,
    /// Drives which events arrive after each operation, in which order, twice or never.
    seed: u64,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::CancelAtPeriodEnd),
        Just(Op::Uncancel),
        (1i64..6).prop_map(Op::Quantity),
        Just(Op::DashboardCancelAt),
        (0u8..4).prop_map(Op::DashboardName),
        (0u8..4).prop_map(Op::OurName),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (prop::collection::vec(op(), 2..7), any::<u64>()).prop_map(|(ops, seed)| Case { ops, seed })
}

/// What the webhooks did so far: delivered (at least once), and dropped for now (caught up
/// at the end).
#[derive(Default)]
struct Delivered {
    seen: HashSet<String>,
    dropped: HashSet<String>,
}

async fn post(w: &World, event: &Value) {
    let (status, answer) = w.app.post_event(event.to_string().as_bytes()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    w.drain().await;
}

/// Delivers some of the events not delivered yet, shuffled; drops some for now; delivers an
/// already delivered one again now and then.
async fn deliver_some(w: &World, d: &mut Delivered, dice: &mut Dice) {
    let mut pending: Vec<Value> = w
        .stripe
        .events()
        .into_iter()
        .filter(|e| {
            let id = e["id"].as_str().unwrap();
            !d.seen.contains(id) && !d.dropped.contains(id)
        })
        .collect();
    dice.shuffle(&mut pending);
    for event in pending {
        let id = event["id"].as_str().unwrap().to_owned();
        if dice.next().is_multiple_of(5) {
            d.dropped.insert(id);
            continue;
        }
        if dice.next().is_multiple_of(3) {
            continue; // late: a later round delivers it
        }
        post(w, &event).await;
        if dice.next().is_multiple_of(4) {
            post(w, &event).await; // Stripe delivers twice
        }
        d.seen.insert(id);
    }
}

/// Catch-up: every event not delivered yet (late or dropped) is stored, in Stripe's order as
/// the Events API lists them; then the queue runs until quiet (tie reads included).
async fn catch_up(w: &World, d: &mut Delivered) {
    let events = w.stripe.events();
    for event in &events {
        let id = event["id"].as_str().unwrap();
        if !d.seen.contains(id) {
            post(w, event).await;
            d.seen.insert(id.to_owned());
        }
    }
    for _ in 0..50 {
        w.drain().await;
        let due: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM jobs WHERE state = 'pending' AND run_at < now() + interval '2 seconds'",
        )
        .fetch_one(&w.app.pool)
        .await
        .unwrap();
        if due == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn run(case: &Case, n: usize) -> Result<(), TestCaseError> {
    let w = World::new().await;
    let customer = format!("u_sscv_{n}");
    let sub = crate::plan_changes::subscribed(&w, &customer, "team", 2).await;
    let stripe_id = w.customer(&customer).await["stripe_id"]
        .as_str()
        .unwrap()
        .to_owned();
    crate::stripe_side::settle(&w).await;
    w.stripe.set_delivery(Delivery::Drop);

    let mut dice = Dice(case.seed | 1);
    let mut delivered = Delivered::default();
    for e in w.stripe.events() {
        delivered.seen.insert(e["id"].as_str().unwrap().to_owned());
    }
    for op in &case.ops {
        let change = |route: &'static str, body: Value| {
            let mut body = body;
            body["customer_id"] = customer.clone().into();
            body["plan_id"] = "team".into();
            (route, body)
        };
        match op {
            Op::CancelAtPeriodEnd | Op::Uncancel | Op::Quantity(_) => {
                let (route, body) = match op {
                    Op::CancelAtPeriodEnd => change("/v1/cancel", json!({"at": "period_end"})),
                    Op::Uncancel => change("/v1/uncancel", json!({})),
                    Op::Quantity(q) => change("/v1/quantity", json!({"quantity": q})),
                    _ => unreachable!(),
                };
                let (status, answer) = w.app.api(Method::POST, route, Some(body)).await;
                // Refusals are fine (uncancel of a plan not set to cancel): the store said so.
                prop_assert!(
                    status.is_success() || status == StatusCode::CONFLICT,
                    "{} {}: {}",
                    route,
                    status,
                    answer
                );
                w.drain().await;
            }
            Op::DashboardCancelAt => {
                // Refused when the subscription ended already: nothing changes.
                let at = w.stripe.now() + 30 * 86_400;
                let _ = w.stripe.set_cancel_at(&sub, at).await;
            }
            Op::DashboardName(k) => {
                w.stripe
                    .update_customer_in_dashboard(&stripe_id, Some(&format!("Dash {k}")), None)
                    .await
                    .unwrap();
            }
            Op::OurName(k) => {
                let (status, answer) = w
                    .app
                    .api(
                        Method::PATCH,
                        &format!("/v1/customers/{customer}"),
                        Some(json!({"name": format!("Ours {k}")})),
                    )
                    .await;
                prop_assert!(status.is_success(), "{}", answer);
                w.drain().await;
            }
        }
        deliver_some(&w, &mut delivered, &mut dice).await;
    }
    catch_up(&w, &mut delivered).await;

    let view = w.customer(&customer).await;
    prop_assert_eq!(
        summary(&view),
        expected_products(&w, &sub),
        "ops {:?}: {:#}",
        case.ops,
        view
    );
    // The dashboard's cancel date too (the summary compares `cancel_at_period_end` only).
    let stripe_sub = crate::plan_changes::stripe_subscription(&w, &sub);
    if let Some(team) = crate::plan_changes::product(&view, "team") {
        prop_assert_eq!(
            team["cancel_at"].is_null(),
            stripe_sub["cancel_at"].is_null(),
            "ops {:?}: {:#}",
            case.ops,
            view
        );
    }
    let stripe_customer = w
        .stripe
        .customers()
        .into_iter()
        .find(|c| c["id"] == stripe_id.as_str())
        .unwrap();
    prop_assert_eq!(
        (&view["name"], &view["email"]),
        (&stripe_customer["name"], &stripe_customer["email"]),
        "ops {:?}",
        case.ops
    );
    Ok(())
}

#[test]
fn same_second_changes_from_both_sides_converge_to_stripe() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(6);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let n = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&case(), |c| {
            let n = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            rt.block_on(run(&c, n))
        })
        .unwrap();
}
