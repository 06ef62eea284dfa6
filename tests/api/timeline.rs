//! `GET /v1/customers/{id}/timeline`: plan changes (with the Stripe event, attach or API
//! call they came from) and balance edits, newest first, a page at a time.

use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::stripe_side::World;

async fn timeline(app: &TestApp, customer: &str, query: &str) -> (StatusCode, Value) {
    app.api(
        Method::GET,
        &format!("/v1/customers/{customer}/timeline{query}"),
        None,
    )
    .await
}

fn find<'a>(entries: &'a [Value], kind: &str, plan: Option<&str>) -> &'a Value {
    entries
        .iter()
        .find(|e| e["kind"] == kind && plan.is_none_or(|p| e["plan_id"] == p))
        .unwrap_or_else(|| panic!("no {kind} {plan:?} in {entries:#?}"))
}

#[tokio::test]
async fn plan_changes_and_balance_edits_show_newest_first_with_their_source() {
    let w = World::new().await;
    w.paying_customer("u_tl").await;
    let attach = w.attach("u_tl", "pro").await;
    w.drain().await;
    let attach_id = attach["id"].as_str().unwrap();
    let subscription = w.attach_state(attach_id).await["stripe_subscription_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The renewal comes a period later, not within the attach's second.
    w.stripe.advance_clock(std::time::Duration::from_secs(60));
    let invoice = w.stripe.renew(&subscription).await.unwrap();
    w.stripe.pay_invoice(&invoice).await.unwrap();
    w.drain().await;
    let grant = json!({"customer_id": "u_tl", "feature_id": "messages", "op": "grant",
                       "amount": 50, "reason": "goodwill", "idempotency_key": "tl-1"});
    let (status, _) = w.app.api(Method::POST, "/v1/balances", Some(grant)).await;
    assert_eq!(status, StatusCode::OK);

    let (status, page) = timeline(&w.app, "u_tl", "?limit=100").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let entries = page["data"].as_array().unwrap().clone();
    assert!(page["next_cursor"].is_null());

    let attached = find(&entries, "plan.attached", Some("pro"));
    assert_eq!(attached["source"], format!("attach:{attach_id}"));
    assert_eq!(attached["subscription_id"], subscription.as_str());
    let ended = find(&entries, "plan.expired", Some("free"));
    assert_eq!(ended["source"], format!("attach:{attach_id}"));
    // The free plan started when the customer was created.
    assert_eq!(
        find(&entries, "plan.attached", Some("free"))["source"],
        "system"
    );
    let renewed = find(&entries, "plan.renewed", Some("pro"));
    assert!(
        renewed["source"].as_str().unwrap().starts_with("evt_"),
        "a Stripe event renewed it: {renewed}"
    );
    let paid = entries
        .iter()
        .find(|e| e["kind"] == "invoice.paid" && e["invoice_id"] == invoice.as_str())
        .unwrap();
    assert!(paid["source"].as_str().unwrap().starts_with("evt_"));
    // A redelivered event adds nothing.
    let again = w
        .stripe
        .events()
        .into_iter()
        .find(|e| e["type"] == "invoice.paid" && e["data"]["object"]["id"] == invoice.as_str())
        .unwrap();
    w.app.post_event(again.to_string().as_bytes()).await;
    w.drain().await;
    let (_, after) = timeline(&w.app, "u_tl", "?limit=100").await;
    let paid_entries = after["data"].as_array().unwrap().iter();
    let renewal_paid =
        paid_entries.filter(|e| e["kind"] == "invoice.paid" && e["invoice_id"] == invoice.as_str());
    assert_eq!(renewal_paid.count(), 1);
    let edit = find(&entries, "balance.grant", None);
    assert_eq!(edit["amount"], 50);
    assert_eq!(edit["reason"], "goodwill");
    assert_eq!(edit["who"], "api");
    assert_eq!(edit["feature_id"], "messages");

    let times: Vec<&str> = entries.iter().map(|e| e["at"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");

    // Page by page, one at a time, gives the same entries in the same order.
    let mut walked = Vec::new();
    let mut query = "?limit=1".to_owned();
    loop {
        let (status, page) = timeline(&w.app, "u_tl", &query).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        walked.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(walked, entries);
}

#[tokio::test]
async fn bad_queries_are_400s_naming_the_parameter_and_unknown_customers_404() {
    let app = TestApp::spawn().await;
    let (status, _) = app.create_customer(json!({"id": "u_tlq"})).await;
    assert_eq!(status, StatusCode::CREATED);
    for (query, field) in [
        ("?limit=0", "limit"),
        ("?limit=abc", "limit"),
        ("?cursor=nope", "cursor"),
        ("?since=1", "query"),
    ] {
        let (status, body) = timeline(&app, "u_tlq", query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(&format!("`{field}`")), "{query}: {body}");
    }
    let (status, body) = timeline(&app, "nobody", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "customer_not_found");
    // A new customer's timeline starts with its default plan.
    let (_, page) = timeline(&app, "u_tlq", "").await;
    assert_eq!(page["data"][0]["kind"], "plan.attached");
    assert_eq!(page["data"][0]["plan_id"], "free");
}
