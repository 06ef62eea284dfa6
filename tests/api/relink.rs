//! An event skipped for want of a linked customer applies once any event links that
//! customer: the re-queue happens where the link is written, in the same transaction, with or
//! without Stripe configured (issue 24, defect 3).

use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

fn fixture(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(fixtures_dir().join(format!("{name}.json"))).unwrap())
        .unwrap()
}

async fn state(app: &TestApp, id: &str) -> Value {
    let (status, body) = app.get(&format!("/v1/events/{id}"), Some(API_TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn a_paid_invoice_skipped_before_the_link_applies_when_a_subscription_event_links() {
    let app = TestApp::spawn().await;
    let (status, _) = app.create_customer(json!({"id": "user_123"})).await;
    assert_eq!(status, StatusCode::CREATED);

    // Shuffled delivery: the paid invoice first, naming only the Stripe customer.
    let mut paid = fixture("invoice.paid");
    paid["data"]["object"]["parent"]["subscription_details"]["metadata"] = json!({});
    let paid_id = paid["id"].as_str().unwrap().to_owned();
    app.post_event(paid.to_string().as_bytes()).await;
    app.engine.run_until_idle().await.unwrap();
    let skipped = state(&app, &paid_id).await;
    assert_eq!(skipped["state"], "skipped", "{skipped}");
    assert!(
        skipped["last_error"]
            .as_str()
            .unwrap()
            .starts_with("unknown Stripe customer"),
        "{skipped}"
    );

    // The subscription's event carries our id in its metadata: it links the customer.
    let created = fixture("customer.subscription.created");
    app.post_event(created.to_string().as_bytes()).await;
    app.engine.run_until_idle().await.unwrap();

    let applied = state(&app, &paid_id).await;
    assert_eq!(applied["state"], "applied", "{applied}");
    let (status, customer) = app.api(Method::GET, "/v1/customers/user_123", None).await;
    assert_eq!(status, StatusCode::OK);
    let invoice_id = paid["data"]["object"]["id"].as_str().unwrap();
    let invoices = customer["invoices"].as_array().expect("invoices");
    assert!(
        invoices
            .iter()
            .any(|i| i["stripe_id"] == invoice_id || i["id"] == invoice_id),
        "{customer}"
    );
}
