//! The production handlers, driven by the fixtures: a subscription's whole life.

use std::path::PathBuf;

use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use stripe_reconciler::store::{attaches, customers};

use crate::helpers::*;

/// Fixture files in Stripe's `created` order.
fn fixtures_in_created_order() -> Vec<PathBuf> {
    let mut files: Vec<(i64, PathBuf)> = fixture_files()
        .into_iter()
        .map(|f| {
            let v: Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
            (v["created"].as_i64().unwrap(), f)
        })
        .collect();
    files.sort();
    files.into_iter().map(|(_, f)| f).collect()
}

/// The customer of the fixtures, with the two attaches their checkout sessions name.
async fn fixture_customer(app: &TestApp) {
    let (status, _) = app
        .create_customer(json!({"id": "user_123", "email": "user@example.com"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let mut conn = app.pool.acquire().await.unwrap();
    let customer = customers::by_id(&mut conn, "user_123")
        .await
        .unwrap()
        .unwrap();
    // The fixtures' two Checkout Sessions: one completed, one expired. Two attaches of one
    // plan cannot be in flight at once, so the expired one was for another plan.
    for (attach, plan) in [("att_0001", "pro"), ("att_0002", "business")] {
        attaches::create(&mut conn, attach, &new_attach(customer.pk, plan))
            .await
            .unwrap()
            .expect("recorded");
    }
}

/// Posts each file and drains the queue after each, as if they arrived far apart.
async fn deliver(app: &TestApp, files: &[PathBuf]) {
    for file in files {
        let (status, answer) = app.post_event(&std::fs::read(file).unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{}: {answer}", file.display());
        app.engine.run_until_idle().await.unwrap();
    }
}

async fn customer(app: &TestApp) -> Value {
    let (status, body) = app.api(Method::GET, "/v1/customers/user_123", None).await;
    assert_eq!(status, StatusCode::OK);
    body
}

async fn event_state(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/v1/events/{id}"), Some(API_TOKEN))
        .await
        .1
}

/// The invoice.paid fixture, and a copy of it as another event for another invoice.
fn paid_invoice() -> Value {
    serde_json::from_slice(&std::fs::read(fixtures_dir().join("invoice.paid.json")).unwrap())
        .unwrap()
}

fn another_invoice(paid: &Value, event_id: &str, invoice_id: &str) -> Value {
    let mut later = paid.clone();
    later["id"] = json!(event_id);
    later["data"]["object"]["id"] = json!(invoice_id);
    later
}

/// Delivers `event` (accepted) and applies everything queued.
async fn deliver_one(app: &TestApp, event: &Value) {
    let (status, _) = app.post_event(&serde_json::to_vec(event).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    app.engine.run_until_idle().await.unwrap();
}

#[tokio::test]
async fn checkout_then_subscription_then_payment_activates_the_plan() {
    let app = TestApp::spawn().await;
    fixture_customer(&app).await;
    let files = fixtures_in_created_order();
    let upto = files
        .iter()
        .position(|f| f.ends_with("checkout.session.completed.json"))
        .unwrap();
    deliver(&app, &files[..=upto]).await;

    let c = customer(&app).await;
    assert_eq!(
        c["stripe_id"], "cus_RcnTest0001",
        "linked through metadata.customer_id"
    );
    let products = c["products"].as_array().unwrap();
    assert_eq!(products.len(), 1, "pro replaced free in group main: {c}");
    assert_eq!(products[0]["plan_id"], "pro");
    assert_eq!(products[0]["status"], "active");
    assert_eq!(products[0]["stripe_subscription_id"], "sub_RcnTest0001");
    assert_eq!(
        products[0]["current_period_end"],
        "2026-12-18T11:06:40+00:00"
    );
    let balances: Vec<(&str, i64)> = c["balances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["feature_id"].as_str().unwrap(),
                b["included"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(balances, [("messages", 1000), ("seats", 5)]);
    assert_eq!(
        c["balances"][0]["next_reset_at"],
        products[0]["current_period_end"]
    );
    assert_eq!(c["invoices"][0]["stripe_id"], "in_RcnTest0001");
    assert_eq!(c["invoices"][0]["status"], "paid");
    assert_eq!(c["invoices"][0]["plan_ids"], json!(["pro"]));

    let mut conn = app.pool.acquire().await.unwrap();
    let done = attaches::get(&mut conn, "att_0001").await.unwrap().unwrap();
    assert_eq!(done.state, "completed");
    assert_eq!(
        done.stripe_subscription_id.as_deref(),
        Some("sub_RcnTest0001")
    );
    let expired = attaches::get(&mut conn, "att_0002").await.unwrap().unwrap();
    assert_eq!(expired.state, "expired");
    assert_eq!(
        event_state(&app, "evt_RcnFixture0009").await["state"],
        "skipped"
    );
}

#[tokio::test]
async fn the_whole_life_in_order_and_in_reverse_ends_the_same() {
    let files = fixtures_in_created_order();
    let mut finals = Vec::new();
    for order in [files.clone(), files.iter().rev().cloned().collect()] {
        let app = TestApp::spawn().await;
        fixture_customer(&app).await;
        deliver(&app, &order).await;
        // Redeliveries and a re-application of everything change nothing.
        deliver(&app, &order[..3]).await;
        stripe_reconciler::ingest::replay(
            &app.pool,
            chrono::Utc::now() - chrono::Duration::hours(1),
            None,
            &Default::default(),
        )
        .await
        .unwrap();
        app.engine.run_until_idle().await.unwrap();
        finals.push(customer(&app).await);
    }
    let c = &finals[0];
    assert_eq!(finals[0], finals[1], "delivery order does not matter");
    let products = c["products"].as_array().unwrap();
    assert_eq!(products.len(), 1, "{c}");
    assert_eq!(
        products[0]["plan_id"], "free",
        "the default plan takes over after deletion"
    );
    assert_eq!(c["balances"][0]["included"], 100);
    assert_eq!(
        c["balances"][0]["next_reset_at"], "2027-02-17T11:06:40+00:00",
        "the free period starts when the subscription ended"
    );
    let invoices: Vec<(&str, &str)> = c["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["stripe_id"].as_str().unwrap(),
                i["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        invoices,
        [("in_RcnTest0002", "open"), ("in_RcnTest0001", "paid")]
    );
}

#[tokio::test]
async fn events_for_strangers_are_skipped_with_a_reason() {
    let app = TestApp::spawn().await;
    // No customer user_123 exists: every fixture maps to no one.
    deliver(&app, &fixtures_in_created_order()).await;
    let sub = event_state(&app, "evt_RcnFixture0003").await;
    assert_eq!(sub["state"], "skipped");
    assert!(
        sub["last_error"]
            .as_str()
            .unwrap()
            .contains("unknown Stripe customer cus_RcnTest0001")
    );
    let checkout = event_state(&app, "evt_RcnFixture0001").await;
    assert_eq!(checkout["state"], "skipped");
    assert!(
        checkout["last_error"]
            .as_str()
            .unwrap()
            .contains("not created by us")
    );
    assert_eq!(
        app.count("SELECT count(*) FROM events WHERE state = 'dead'")
            .await,
        0
    );
}

#[tokio::test]
async fn an_older_event_never_overwrites_newer_state() {
    let app = TestApp::spawn().await;
    fixture_customer(&app).await;
    let dir = fixtures_dir();
    // The deletion arrives first; the creation (older) must not resurrect the plan.
    deliver(
        &app,
        &[
            dir.join("customer.subscription.deleted.json"),
            dir.join("customer.subscription.created.json"),
        ],
    )
    .await;
    let c = customer(&app).await;
    assert_eq!(c["products"][0]["plan_id"], "free", "{c}");
    let created = event_state(&app, "evt_RcnFixture0003").await;
    assert_eq!(created["state"], "skipped");
    assert!(created["last_error"].as_str().unwrap().starts_with("stale"));
}

#[tokio::test]
async fn an_invoice_keeps_naming_the_plan_its_price_was_stored_for() {
    let app = TestApp::spawn().await;
    fixture_customer(&app).await;
    let set_price = |price: &'static str| {
        let pool = app.pool.clone();
        async move {
            sqlx::query("UPDATE catalog_plans SET stripe_price_id = $1 WHERE id = 'business'")
                .bind(price)
                .execute(&pool)
                .await
                .unwrap();
        }
    };
    // The fixture's metadata says pro, but its price is stored for business: the price wins.
    set_price("price_RcnProMonthly").await;
    let paid = paid_invoice();
    deliver_one(&app, &paid).await;

    // The plan got a new price since; an invoice for the old price still bills business.
    set_price("price_RcnBusinessNew").await;
    deliver_one(
        &app,
        &another_invoice(&paid, "evt_RcnLaterInvoice", "in_RcnLater"),
    )
    .await;

    let c = customer(&app).await;
    let invoices: Vec<(&str, &Value)> = c["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["stripe_id"].as_str().unwrap(), &i["plan_ids"]))
        .collect();
    assert_eq!(invoices.len(), 2, "{c}");
    for (id, plans) in invoices {
        assert_eq!(plans, &json!(["business"]), "{id}");
    }
    assert_eq!(
        event_state(&app, "evt_RcnLaterInvoice").await["state"],
        "applied"
    );
}

#[test]
fn every_fixture_parses_with_async_stripes_own_types() {
    use stripe_webhook::{EventObject, Webhook};
    for file in fixture_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let event =
            Webhook::insecure(&text).unwrap_or_else(|e| panic!("{}: {e:?}", file.display()));
        assert!(
            !matches!(event.data.object, EventObject::Unknown(_)),
            "{} is not typed by async-stripe",
            file.display()
        );
    }
}

#[tokio::test]
async fn a_price_the_catalog_sync_stores_is_read_again_at_once() {
    // A price found in no plan is remembered as unknown for a while (the object's metadata
    // names the plan meanwhile); a catalog sync that stores it makes the next event read it.
    let app = TestApp::spawn().await;
    fixture_customer(&app).await;
    let paid = paid_invoice();
    deliver_one(&app, &paid).await;

    let mut conn = app.pool.acquire().await.unwrap();
    let objects = stripe_reconciler::store::stripe_ids::PlanObjects {
        product: Some("prod_RcnBusiness".to_owned()),
        price: Some("price_RcnProMonthly".to_owned()),
        usage_prices: Default::default(),
    };
    stripe_reconciler::store::stripe_ids::save_plan_objects(
        &mut conn,
        "business",
        "acct_test",
        &objects,
    )
    .await
    .unwrap();
    deliver_one(
        &app,
        &another_invoice(&paid, "evt_RcnSyncedPrice", "in_RcnSyncedPrice"),
    )
    .await;

    let c = customer(&app).await;
    let plans = |id: &str| {
        c["invoices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["stripe_id"] == id)
            .map(|i| i["plan_ids"].clone())
    };
    // The fixture's metadata says pro; once the price is stored for business, it wins.
    assert_eq!(plans("in_RcnSyncedPrice"), Some(json!(["business"])), "{c}");
    assert_eq!(
        plans(paid["data"]["object"]["id"].as_str().unwrap()),
        Some(json!(["pro"])),
        "{c}"
    );
}
