//! The customer view's detail page: every plan with its history's times and price, ended
//! plans included, and an invoice's lines (`GET /v1/customers/{id}/invoices/{invoice_id}`).

use std::time::Duration;

use chrono::DateTime;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::stripe_side::World;

/// A Stripe time (seconds) as the API writes times.
fn at(secs: &Value) -> String {
    let secs = secs
        .as_i64()
        .unwrap_or_else(|| panic!("not a time: {secs}"));
    DateTime::from_timestamp(secs, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S+00:00")
        .to_string()
}

/// The customer's only subscription in the fake, as Stripe holds it now.
fn subscription(w: &World) -> Value {
    let subs = w.stripe.subscriptions();
    assert_eq!(subs.len(), 1, "{subs:?}");
    subs[0].clone()
}

fn ended<'a>(view: &'a Value, plan: &str) -> &'a Value {
    view["ended_products"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["plan_id"] == plan)
        .unwrap_or_else(|| panic!("no ended {plan}: {view}"))
}

async fn invoice(app: &TestApp, customer: &str, invoice: &str) -> (StatusCode, Value) {
    let path = format!("/v1/customers/{customer}/invoices/{invoice}");
    app.api(Method::GET, &path, None).await
}

#[tokio::test]
async fn a_paid_plan_shows_its_price_and_renewal_and_an_upgrade_ends_it() {
    let w = World::new().await;
    w.paying_customer("u_up").await;
    w.attach("u_up", "pro").await;
    w.drain().await;

    let view = w.customer("u_up").await;
    let sub = subscription(&w);
    let pro = &view["products"][0];
    assert_eq!(
        (&pro["plan_id"], &pro["status"]),
        (&json!("pro"), &json!("active"))
    );
    assert_eq!(
        (&pro["interval"], &pro["amount"], &pro["currency"]),
        (&json!("month"), &json!(2000), &json!("usd")),
        "{pro}"
    );
    let period_end = at(&sub["items"]["data"][0]["current_period_end"]);
    assert_eq!(pro["next_renewal_at"], period_end.as_str(), "{pro}");
    assert_eq!(pro["started_at"], at(&sub["start_date"]).as_str(), "{pro}");
    assert_eq!(pro["ended_at"], Value::Null);
    // The free plan it replaced is listed as ended, from its start to pro's first sighting.
    let free = ended(&view, "free");
    assert_eq!(free["status"], "expired");
    assert!(free["started_at"].is_string(), "{free}");
    assert!(
        free["ended_at"].as_str().unwrap() >= free["started_at"].as_str().unwrap(),
        "{free}"
    );
    assert_eq!(
        (&free["interval"], &free["amount"], &free["next_renewal_at"]),
        (&Value::Null, &Value::Null, &Value::Null)
    );

    // An upgrade on the same subscription, made (and first seen) by our attach job.
    let before = now();
    w.attach("u_up", "business").await;
    w.drain().await;
    let after = now();

    let view = w.customer("u_up").await;
    let business = &view["products"][0];
    assert_eq!(business["plan_id"], "business", "{view}");
    assert_eq!(view["products"].as_array().unwrap().len(), 1, "{view}");
    assert_eq!(business["amount"], 9900);
    let pro = ended(&view, "pro");
    assert_eq!(pro["status"], "expired");
    assert_eq!(pro["started_at"], at(&sub["start_date"]).as_str(), "{pro}");
    assert_eq!(
        pro["next_renewal_at"],
        Value::Null,
        "an ended plan renews no more"
    );
    // Business began with the upgrade (not at the subscription's start), and pro ended then.
    assert_eq!(pro["ended_at"], business["started_at"], "{view}");
    let began = DateTime::parse_from_rfc3339(business["started_at"].as_str().unwrap())
        .unwrap()
        .timestamp();
    assert!(
        (before..=after).contains(&began),
        "{before}..{after}: {view}"
    );
    // The latest end first (both may end within one second here: the convergence test
    // checks the order with times apart).
    let ends: Vec<&str> = view["ended_products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["ended_at"].as_str().unwrap())
        .collect();
    assert_eq!(ends.len(), 2, "{view}");
    assert!(ends[0] >= ends[1], "{view}");
}

#[tokio::test]
async fn a_cancellation_in_stripe_ends_the_plan_and_free_starts_again_then() {
    let w = World::new().await;
    w.paying_customer("u_end").await;
    w.attach("u_end", "pro").await;
    w.drain().await;
    let id = subscription(&w)["id"].as_str().unwrap().to_owned();

    // Set to cancel before the period ends: no renewal to show.
    let period_end = subscription(&w)["items"]["data"][0]["current_period_end"]
        .as_i64()
        .unwrap();
    w.stripe
        .set_cancel_at(&id, period_end - 86_400)
        .await
        .unwrap();
    w.drain().await;
    let pro = w.customer("u_end").await["products"][0].clone();
    assert_eq!(pro["plan_id"], "pro");
    assert!(pro["cancel_at"].is_string(), "{pro}");
    assert_eq!(pro["next_renewal_at"], Value::Null, "{pro}");
    assert_eq!(pro["current_period_end"], at(&json!(period_end)).as_str());

    w.stripe.advance_clock(Duration::from_secs(10 * 86_400));
    w.stripe.cancel_subscription(&id).await.unwrap();
    w.drain().await;

    let view = w.customer("u_end").await;
    let ended_at = at(&subscription(&w)["ended_at"]);
    let pro = ended(&view, "pro");
    assert_eq!(pro["status"], "expired");
    assert_eq!(pro["ended_at"], ended_at.as_str(), "{pro}");
    assert_eq!(
        pro["started_at"],
        at(&subscription(&w)["start_date"]).as_str()
    );
    assert_eq!(
        (&pro["interval"], &pro["amount"]),
        (&json!("month"), &json!(2000))
    );
    let free = &view["products"][0];
    assert_eq!(
        (&free["plan_id"], &free["status"]),
        (&json!("free"), &json!("active")),
        "{view}"
    );
    assert_eq!(
        free["started_at"],
        ended_at.as_str(),
        "free restarts as pro ends"
    );
    assert_eq!(free["ended_at"], Value::Null);
}

#[tokio::test]
async fn a_paid_invoice_shows_its_lines() {
    let w = World::new().await;
    w.paying_customer("u_lines").await;
    w.attach("u_lines", "pro").await;
    // Until every webhook the fake sent is stored and applied (a drain alone raced them
    // under load).
    crate::stripe_side::settle(&w).await;
    let sub = subscription(&w);
    let invoices = w.customer("u_lines").await["invoices"].clone();
    assert_eq!(invoices.as_array().unwrap().len(), 1, "{invoices}");
    let id = invoices[0]["stripe_id"].as_str().unwrap();

    let (status, detail) = invoice(&w.app, "u_lines", id).await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(
        (&detail["stripe_id"], &detail["status"], &detail["total"]),
        (&json!(id), &json!("paid"), &json!(2000)),
        "{detail}"
    );
    assert_eq!(detail["plan_ids"], json!(["pro"]));
    assert_eq!(detail["customer_id"], "u_lines");
    assert!(detail["hosted_invoice_url"].is_string(), "{detail}");
    let lines = detail["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "{detail}");
    let line = &lines[0];
    let stripe_line = &w
        .stripe
        .invoices()
        .into_iter()
        .find(|i| i["id"] == id)
        .unwrap()["lines"]["data"][0];
    assert_eq!(line["id"], stripe_line["id"]);
    assert_eq!(
        (&line["amount"], &line["currency"], &line["quantity"]),
        (&json!(2000), &json!("usd"), &json!(1))
    );
    assert_eq!(line["plan_id"], "pro", "{line}");
    assert_eq!(line["price_id"], sub["items"]["data"][0]["price"]["id"]);
    let description = line["description"].as_str().unwrap();
    assert!(description.contains("Pro"), "{description}");
    assert_eq!(
        line["period_start"],
        at(&sub["items"]["data"][0]["current_period_start"]).as_str()
    );
    assert_eq!(
        line["period_end"],
        at(&sub["items"]["data"][0]["current_period_end"]).as_str()
    );

    // The renewal's invoice bills the next period.
    let renewal = w.stripe.renew(sub["id"].as_str().unwrap()).await.unwrap();
    w.stripe.pay_invoice(&renewal).await.unwrap();
    w.drain_retries().await;
    let (status, next) = invoice(&w.app, "u_lines", &renewal).await;
    assert_eq!(status, StatusCode::OK, "{next}");
    assert_eq!(next["status"], "paid", "{next}");
    assert_eq!(
        next["lines"][0]["period_start"], line["period_end"],
        "{next}"
    );
    assert_eq!(next["lines"][0]["plan_id"], "pro");
}

#[tokio::test]
async fn an_unknown_customer_or_invoice_and_another_customers_invoice_are_404s() {
    let w = World::new().await;
    w.paying_customer("u_owner").await;
    w.attach("u_owner", "pro").await;
    w.drain().await;
    w.app.create_customer(json!({"id": "u_other"})).await;
    // The first invoice comes by webhook, on its own time.
    let mut id = None;
    for _ in 0..100 {
        w.drain().await;
        id = w.customer("u_owner").await["invoices"][0]["stripe_id"]
            .as_str()
            .map(str::to_owned);
        if id.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let id = id.expect("the first invoice arrives");

    let code = |body: &Value| {
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let (status, body) = invoice(&w.app, "u_nobody", &id).await;
    assert_eq!(
        (status, code(&body).as_str()),
        (StatusCode::NOT_FOUND, "customer_not_found")
    );
    let (status, body) = invoice(&w.app, "u_owner", "in_nothing").await;
    assert_eq!(
        (status, code(&body).as_str()),
        (StatusCode::NOT_FOUND, "invoice_not_found")
    );
    let (status, body) = invoice(&w.app, "u_other", &id).await;
    assert_eq!(
        (status, code(&body).as_str()),
        (StatusCode::NOT_FOUND, "invoice_not_found"),
        "another customer's invoice is not theirs: {body}"
    );
    let path = format!("/v1/customers/u_owner/invoices/{id}");
    let (status, _) = w.app.api(Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

/// An invoice event whose lines bill `amount` for `plan`, created at `created`.
fn invoice_event(n: u32, event_type: &str, status: &str, created: i64, amount: i64) -> Vec<u8> {
    let invoice = json!({
        "id": "in_guard", "object": "invoice", "customer": "cus_guard", "status": status,
        "billing_reason": "subscription_cycle", "total": amount, "currency": "eur",
        "created": 1_795_000_000, "period_start": 1_795_000_000, "period_end": 1_795_000_000,
        "parent": { "type": "subscription_details", "subscription_details": {
            "subscription": "sub_guard", "metadata": { "customer_id": "u_guard", "plan_id": "pro" } } },
        "lines": { "object": "list", "data": [{
            "id": format!("il_guard_{n}"), "object": "line_item", "amount": amount,
            "currency": "eur", "description": format!("line {n}"), "quantity": 2,
            "period": { "start": 1_795_000_000, "end": 1_797_592_000 }, "metadata": {},
            "pricing": { "type": "price_details",
                         "price_details": { "price": "price_unknown", "product": "prod_x" } }
        }]}
    });
    serde_json::to_vec(&json!({
        "id": format!("evt_guard_{n}"), "object": "event", "api_version": "2026-09-30.endive",
        "created": created, "livemode": false, "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null}, "type": event_type,
        "data": { "object": invoice },
    }))
    .unwrap()
}

#[tokio::test]
async fn an_older_event_does_not_replace_the_lines_of_a_newer_one() {
    let app = TestApp::spawn().await;
    app.create_customer(json!({"id": "u_guard"})).await;
    // The paid invoice (newer) arrives before its draft (older, other lines).
    for body in [
        invoice_event(2, "invoice.paid", "paid", 1_795_000_100, 3000),
        invoice_event(1, "invoice.created", "draft", 1_795_000_000, 1000),
    ] {
        let (status, answer) = app.post_event(&body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        app.engine.run_until_idle().await.unwrap();
    }
    let (status, detail) = invoice(&app, "u_guard", "in_guard").await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["status"], "paid");
    let lines = detail["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "{detail}");
    assert_eq!(
        (&lines[0]["id"], &lines[0]["amount"], &lines[0]["quantity"]),
        (&json!("il_guard_2"), &json!(3000), &json!(2)),
        "{detail}"
    );
    assert_eq!(lines[0]["description"], "line 2");
    assert_eq!(lines[0]["currency"], "eur");
    assert_eq!(lines[0]["period_end"], "2026-12-18T11:06:40+00:00");
    // A price the catalog does not know maps to no plan; the invoice falls back to the
    // subscription's metadata.
    assert_eq!(lines[0]["price_id"], "price_unknown");
    assert_eq!(lines[0]["plan_id"], Value::Null);
    assert_eq!(detail["plan_ids"], json!(["pro"]));
}
