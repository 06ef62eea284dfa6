//! Two events of one subscription from the same second that say different things (set to
//! cancel, then not, a moment apart): Stripe's `created` cannot order them, so whichever
//! arrives second ties with the first, and the subscription is read from Stripe to settle
//! it. Both delivery orders end where Stripe is. A read counts as of the second it was taken
//! in (issue 24), so the events of that second delivered again tie with it and are read again,
//! never applied over it.

use std::time::Duration;

use fake_stripe::Delivery;
use serde_json::Value;
use stripe_reconciler::config::Secret;
use stripe_reconciler::stripe::client::StripeApi;

use crate::stripe_side::{STRIPE_KEY, World};

/// A customer on pro whose subscription was set to cancel and then not, in Stripe, with both
/// events stamped with the same second and not delivered; returns them (cancel, uncancel)
/// and the subscription.
async fn cancel_then_uncancel(w: &World, customer: &str) -> (Value, Value, String) {
    w.paying_customer(customer).await;
    let attach = w.attach(customer, "pro").await;
    w.drain().await;
    let sub = w.attach_state(attach["id"].as_str().unwrap()).await["stripe_subscription_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Let the attach's own webhooks land, then lose the next ones.
    for _ in 0..20 {
        w.drain().await;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    w.stripe.set_delivery(Delivery::Drop);
    let before = w.stripe.events().len();
    let api = StripeApi::new(
        &Secret::new(STRIPE_KEY),
        &w.stripe.url(),
        Duration::from_secs(5),
    )
    .unwrap();
    api.set_cancel_at_period_end(&format!("by-hand-cancel-{customer}"), &sub, true)
        .await
        .unwrap();
    api.set_cancel_at_period_end(&format!("by-hand-uncancel-{customer}"), &sub, false)
        .await
        .unwrap();
    let mut events: Vec<Value> = w.stripe.events()[before..].to_vec();
    assert_eq!(events.len(), 2, "{events:#?}");
    let second = events[1]["created"].clone();
    events[0]["created"] = second;
    let uncancel = events.pop().unwrap();
    let cancel = events.pop().unwrap();
    assert_eq!(cancel["data"]["object"]["cancel_at_period_end"], true);
    assert_eq!(uncancel["data"]["object"]["cancel_at_period_end"], false);
    (cancel, uncancel, sub)
}

async fn deliver(w: &World, events: [&Value; 2]) {
    for event in events {
        w.app.post_event(event.to_string().as_bytes()).await;
        w.drain().await;
    }
}

fn pro(view: &Value) -> &Value {
    view["products"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["plan_id"] == "pro")
        .unwrap()
}

#[tokio::test]
async fn a_same_second_tie_is_settled_by_reading_stripe_in_either_order() {
    let w = World::new().await;
    for (n, reversed) in [(0, true), (1, false)] {
        let customer = format!("u_tie_{n}");
        let (cancel, uncancel, sub) = cancel_then_uncancel(&w, &customer).await;
        let reads = w.calls("GET", &format!("/v1/subscriptions/{sub}")).len();
        if reversed {
            deliver(&w, [&uncancel, &cancel]).await;
        } else {
            deliver(&w, [&cancel, &uncancel]).await;
        }
        let view = w.customer(&customer).await;
        assert_eq!(
            pro(&view)["cancel_at_period_end"],
            false,
            "reversed {reversed}: {view:#}"
        );
        assert!(pro(&view)["cancel_at"].is_null());
        // Reads settled the tie: the first, and one more when that read replaced an event's
        // state of its own second (a change later in that second could have come first).
        let settled = w.calls("GET", &format!("/v1/subscriptions/{sub}")).len() - reads;
        assert!(
            (1..=2).contains(&settled),
            "{settled} reads settled the tie"
        );
        // Delivered again: the events tie with the reads' second and are not applied; each
        // that differs from Stripe's state is settled by a read again, and the state stays.
        deliver(&w, [&cancel, &uncancel]).await;
        let again = w.customer(&customer).await;
        assert_eq!(pro(&again)["cancel_at_period_end"], false);
        assert!(pro(&again)["cancel_at"].is_null());
        w.stripe.set_delivery(Delivery::Deliver);
    }
}
