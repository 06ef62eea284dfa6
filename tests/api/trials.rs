//! Free trials (issue 17): given once per customer and once per fingerprint, with a card
//! (the customer's, or one taken at checkout) or without (the subscription cancels at the
//! trial's end unless a payment method was added); `trialing` is live; the trial's end and
//! Stripe's notice three days before come in as webhooks.

use std::path::Path;

use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use crate::stripe_side::{World, assert_came, settle};

async fn world() -> World {
    World::with(|s| {
        s.catalog =
            Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/catalogs/trials.toml"));
    })
    .await
}

/// A customer with `fingerprint`, a Stripe customer, and (when `pays`) a default card.
async fn customer(w: &World, id: &str, fingerprint: &str, pays: bool) {
    let body = json!({"id": id, "fingerprint": fingerprint, "create_in_stripe": true});
    let (status, _) = w.app.create_customer(body).await;
    assert_eq!(status, StatusCode::CREATED);
    w.drain().await;
    if pays {
        let stripe_id = w.customer(id).await["stripe_id"]
            .as_str()
            .unwrap()
            .to_owned();
        w.stripe.set_default_payment_method(&stripe_id);
    }
}

async fn attach(w: &World, customer: &str, plan: &str) -> Value {
    let answer = w.attach(customer, plan).await;
    w.drain().await;
    w.attach_state(answer["id"].as_str().unwrap()).await
}

fn product<'a>(view: &'a Value, plan: &str) -> Option<&'a Value> {
    view["products"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["plan_id"] == plan)
}

fn subscription(w: &World, id: &str) -> Value {
    w.stripe
        .subscriptions()
        .into_iter()
        .find(|s| s["id"] == id)
        .unwrap()
}

#[tokio::test]
async fn a_trial_is_given_once_per_customer_and_once_per_fingerprint() {
    let w = world().await;
    customer(&w, "u_t1", "fp-shared", true).await;
    customer(&w, "u_t2", "fp-shared", true).await;

    let first = attach(&w, "u_t1", "pro").await;
    assert_eq!(first["state"], "active", "{first}");
    assert_eq!(first["trial_days"], 14);
    let sub = first["stripe_subscription_id"].as_str().unwrap();
    let stripe = subscription(&w, sub);
    assert_eq!(stripe["status"], "trialing");
    let trial_end = stripe["trial_end"].as_i64().unwrap();
    assert!(trial_end - stripe["trial_start"].as_i64().unwrap() == 14 * 86_400);
    settle(&w).await;
    assert_came(&w, sub, "customer.subscription.created").await;
    let view = w.customer("u_t1").await;
    let pro = product(&view, "pro").unwrap();
    assert_eq!(pro["status"], "trialing", "trialing is live: {view}");
    let end = chrono::DateTime::parse_from_rfc3339(pro["trial_end"].as_str().unwrap()).unwrap();
    assert_eq!(end.timestamp(), trial_end);
    let attach_end = w.attach_state(first["id"].as_str().unwrap()).await["trial_end"].clone();
    let attach_end = chrono::DateTime::parse_from_rfc3339(attach_end.as_str().unwrap()).unwrap();
    assert_eq!(
        attach_end.timestamp(),
        trial_end,
        "the attach says until when"
    );
    let balance = &view["balances"][0];
    assert_eq!(
        balance["included"], 1000,
        "the trial grants the plan: {view}"
    );

    // Another account with the same fingerprint: no trial, charged at once.
    let second = attach(&w, "u_t2", "pro").await;
    assert_eq!(second["state"], "active", "{second}");
    assert!(second["trial_days"].is_null(), "{second}");
    let stripe = subscription(&w, second["stripe_subscription_id"].as_str().unwrap());
    assert_eq!(stripe["status"], "active");
    assert!(stripe["trial_end"].is_null());

    // The same customer again, after ending the plan: no second trial.
    let body = json!({"customer_id": "u_t1", "plan_id": "pro", "at": "now"});
    w.app.api(Method::POST, "/v1/cancel", Some(body)).await;
    settle(&w).await;
    assert_came(&w, sub, "customer.subscription.deleted").await;
    assert!(product(&w.customer("u_t1").await, "pro").is_none());
    let again = attach(&w, "u_t1", "pro").await;
    assert!(again["trial_days"].is_null(), "{again}");
}

/// Two accounts with one fingerprint attach at the same moment, over many rounds on two
/// threads: both requests are sent before either is awaited, so the server handles them at
/// once. Each round ends with one trial claimed and one trialing subscription in Stripe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_accounts_racing_with_one_fingerprint_get_one_trial() {
    let w = world().await;
    let body = |id: &str| {
        json!({"customer_id": id, "plan_id": "pro",
               "success_url": "https://a.test/", "cancel_url": "https://a.test/"})
    };
    for round in 0..12 {
        let (one, two, fingerprint) = (
            format!("u_r{round}a"),
            format!("u_r{round}b"),
            format!("fp-race-{round}"),
        );
        customer(&w, &one, &fingerprint, true).await;
        customer(&w, &two, &fingerprint, true).await;
        let ((sa, a), (sb, b)) = tokio::join!(
            w.app.api(Method::POST, "/v1/attach", Some(body(&one))),
            w.app.api(Method::POST, "/v1/attach", Some(body(&two)))
        );
        assert!(sa.is_success() && sb.is_success(), "{a} {b}");
        let trials = [&a, &b].iter().filter(|x| x["trial_days"] == 14).count();
        assert_eq!(trials, 1, "round {round}: {a} {b}");
        let claimed: i64 = sqlx::query_scalar("SELECT count(*) FROM trials WHERE fingerprint = $1")
            .bind(&fingerprint)
            .fetch_one(&w.app.pool)
            .await
            .unwrap();
        assert_eq!(claimed, 1, "round {round}: one trial claimed");
        w.drain().await;
        let subs: Vec<Value> = w
            .stripe
            .subscriptions()
            .into_iter()
            .filter(|s| {
                s["metadata"]["customer_id"] == one.as_str()
                    || s["metadata"]["customer_id"] == two.as_str()
            })
            .collect();
        let statuses: Vec<&str> = subs.iter().map(|s| s["status"].as_str().unwrap()).collect();
        assert_eq!(subs.len(), 2, "round {round}: {statuses:?}");
        assert_eq!(
            statuses.iter().filter(|s| **s == "trialing").count(),
            1,
            "round {round}: one trialing subscription in Stripe: {statuses:?}"
        );
    }
}

#[tokio::test]
async fn a_trial_without_a_card_starts_at_once_and_ends_the_plan_without_one() {
    let w = world().await;
    customer(&w, "u_nc", "fp-nc", false).await;
    let attached = attach(&w, "u_nc", "starter").await;
    assert_eq!(attached["state"], "active", "no checkout: {attached}");
    assert_eq!(attached["trial_days"], 7);
    let sub = attached["stripe_subscription_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let create = w
        .stripe
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path == "/v1/subscriptions")
        .unwrap();
    assert!(
        create.form.contains(&(
            "trial_settings[end_behavior][missing_payment_method]".to_owned(),
            "cancel".to_owned()
        )),
        "{:?}",
        create.form
    );
    settle(&w).await;
    assert_came(&w, &sub, "customer.subscription.created").await;
    assert_eq!(
        product(&w.customer("u_nc").await, "starter").unwrap()["status"],
        "trialing"
    );

    w.stripe.trial_will_end(&sub).await.unwrap();
    w.stripe.end_trial(&sub).await.unwrap();
    settle(&w).await;
    assert_came(&w, &sub, "customer.subscription.trial_will_end").await;
    assert_came(&w, &sub, "customer.subscription.deleted").await;
    assert_eq!(subscription(&w, &sub)["status"], "canceled");
    let view = w.customer("u_nc").await;
    assert!(product(&view, "starter").is_none(), "{view}");
    assert_eq!(product(&view, "free").unwrap()["status"], "active");
    let (_, timeline) = w
        .app
        .api(Method::GET, "/v1/customers/u_nc/timeline?limit=100", None)
        .await;
    let notice = timeline["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "plan.trial_will_end")
        .cloned()
        .unwrap_or_else(|| panic!("{timeline:#}"));
    assert_eq!(notice["plan_id"], "starter");
    assert!(notice["source"].as_str().unwrap().starts_with("evt_"));
}

#[tokio::test]
async fn a_trial_that_needs_a_card_goes_through_checkout_and_bills_at_its_end() {
    let w = world().await;
    customer(&w, "u_cc", "fp-cc", false).await;
    let attached = attach(&w, "u_cc", "pro").await;
    assert_eq!(attached["state"], "checkout_required", "{attached}");
    assert_eq!(attached["trial_days"], 14);
    let session = w.stripe.checkout_sessions().pop().unwrap();
    let create = w
        .stripe
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path == "/v1/checkout/sessions")
        .unwrap();
    let trial = (
        "subscription_data[trial_period_days]".to_owned(),
        "14".to_owned(),
    );
    assert!(create.form.contains(&trial), "{:?}", create.form);
    w.stripe
        .complete_checkout(session["id"].as_str().unwrap())
        .await
        .unwrap();
    settle(&w).await;
    assert_came(
        &w,
        session["id"].as_str().unwrap(),
        "checkout.session.completed",
    )
    .await;
    let view = w.customer("u_cc").await;
    let pro = product(&view, "pro").unwrap();
    assert_eq!(pro["status"], "trialing", "{view}");
    let sub = pro["stripe_subscription_id"].as_str().unwrap().to_owned();
    assert_came(&w, &sub, "customer.subscription.created").await;

    // The card taken at checkout pays when the trial ends.
    w.stripe.end_trial(&sub).await.unwrap();
    settle(&w).await;
    assert_came(&w, &sub, "customer.subscription.updated").await;
    let view = w.customer("u_cc").await;
    assert_eq!(product(&view, "pro").unwrap()["status"], "active", "{view}");
    let paid: Vec<&Value> = view["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "paid" && i["total"] == 2000)
        .collect();
    assert_eq!(paid.len(), 1, "{view}");
}

#[tokio::test]
async fn a_fingerprint_is_the_same_with_whitespace_around_it() {
    // Issue 24, defect 11: "fp " and "\tfp" each got a new trial after "fp" had its own.
    let w = world().await;
    customer(&w, "u_ws0", "fp", true).await;
    let first = attach(&w, "u_ws0", "pro").await;
    assert_eq!(first["trial_days"], 14, "{first}");
    for (id, fingerprint) in [
        ("u_ws1", "fp "),
        ("u_ws2", "\tfp"),
        ("u_ws3", "\n fp\u{a0}"),
    ] {
        customer(&w, id, fingerprint, true).await;
        let again = attach(&w, id, "pro").await;
        assert_eq!(again["state"], "active", "{again}");
        assert!(again["trial_days"].is_null(), "{fingerprint:?}: {again}");
        assert_eq!(
            w.customer(id).await["fingerprint"],
            "fp",
            "stored trimmed: {fingerprint:?}"
        );
    }
    // Case is kept: fingerprints (a card's, a device's) are case-sensitive identifiers.
    customer(&w, "u_ws4", "FP", true).await;
    assert_eq!(w.customer("u_ws4").await["fingerprint"], "FP");
    // Nothing but whitespace is no fingerprint (not one shared by every such account).
    customer(&w, "u_ws5", " \t", true).await;
    assert!(w.customer("u_ws5").await["fingerprint"].is_null());
}
