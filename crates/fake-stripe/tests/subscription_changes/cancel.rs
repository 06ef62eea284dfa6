//! `DELETE /v1/subscriptions/{id}`: the canceled subscription, its event, `prorate`,
//! `invoice_now`, what happens to pending prorations, and Stripe's errors.

use serde_json::Value;

use crate::helpers::{World, ok, raw};
use crate::prorations::day;

#[tokio::test]
async fn delete_cancels_at_once_and_answers_the_canceled_subscription() {
    let w = World::new(1).await;
    let at = w.move_into_period(1, 2);
    let skip = w.fake.events().len();
    let (status, sub, request_id) = w.cancel("").await;
    assert_eq!(status, 200, "{sub}");
    assert_eq!(sub["id"], w.subscription.as_str());
    assert_eq!(sub["status"], "canceled");
    assert_eq!(sub["ended_at"], at);
    assert_eq!(sub["canceled_at"], at);
    assert_eq!(
        sub["cancellation_details"]["reason"],
        "cancellation_requested"
    );
    assert_eq!(sub, w.subscription(), "the answer is the stored object");

    assert_eq!(w.types_since(skip), ["customer.subscription.deleted"]);
    let event = &w.fake.events()[skip];
    assert_eq!(event["data"]["object"], sub);
    assert_eq!(event["request"]["id"], request_id.as_str());
    assert!(w.fake.invoice_items().is_empty(), "no prorate: no credit");
    assert_eq!(w.fake.invoices().len(), 1, "no invoice_now: no invoice");
    let path = format!("/v1/subscriptions/{}", w.subscription);
    let retrieved = ok(raw(&w.fake, "GET", &path, "").await);
    assert_eq!(retrieved["status"], "canceled");
}

#[tokio::test]
async fn prorate_credits_the_unused_time_as_a_pending_item() {
    let w = World::new(2).await;
    let (_, end) = w.period();
    let at = w.move_into_period(1, 2);
    let skip = w.fake.events().len();
    let (status, sub, request_id) = w.cancel("prorate=true").await;
    assert_eq!(status, 200, "{sub}");
    assert_eq!(sub["status"], "canceled");

    let pending = w.fake.pending_invoice_items(&w.customer);
    assert_eq!(pending.len(), 1, "{pending:?}");
    let credit = &pending[0];
    assert_eq!(credit["amount"], -1000, "2 × 1000 for half the period");
    assert_eq!(credit["proration"], true);
    assert_eq!(credit["quantity"], 2);
    assert_eq!(
        credit["description"],
        format!("Unused time on 2 × Pro after {}", day(at))
    );
    assert_eq!(credit["period"]["start"], at);
    assert_eq!(credit["period"]["end"], end);
    assert_eq!(
        credit["parent"]["subscription_details"]["subscription_item"],
        w.item.as_str()
    );
    assert_eq!(
        w.types_since(skip),
        ["invoiceitem.created", "customer.subscription.deleted"]
    );
    assert!(
        w.fake.events()[skip..]
            .iter()
            .all(|e| e["request"]["id"] == request_id.as_str())
    );
    assert_eq!(w.fake.invoices().len(), 1, "no invoice_now: no invoice");
}

#[tokio::test]
async fn invoice_now_with_prorate_invoices_the_credit_to_the_balance() {
    let w = World::new(1).await;
    w.move_into_period(1, 2);
    let skip = w.fake.events().len();
    let (status, sub, _) = w.cancel("prorate=true&invoice_now=true").await;
    assert_eq!(status, 200, "{sub}");
    let invoice_id = sub["latest_invoice"].as_str().unwrap();
    let invoice = w.invoice(invoice_id);
    assert_eq!(invoice["total"], -500);
    assert_eq!(invoice["amount_due"], 0);
    assert_eq!(invoice["status"], "paid");
    assert_eq!(invoice["ending_balance"], -500);
    assert_eq!(w.customer_balance(), -500);
    assert!(w.fake.pending_invoice_items(&w.customer).is_empty());
    assert_eq!(
        w.types_since(skip),
        [
            "invoiceitem.created",
            "customer.subscription.deleted",
            "invoice.created",
            "invoice.paid"
        ]
    );
    let deleted = &w.fake.events()[skip + 1];
    assert_eq!(deleted["data"]["object"]["latest_invoice"], invoice_id);
}

#[tokio::test]
async fn invoice_now_charges_what_an_upgrade_left_pending() {
    let w = World::new(1).await;
    w.move_into_period(1, 2);
    let form = format!("items[0][id]={}&items[0][quantity]=3", w.item);
    ok(w.update(&form).await);
    let skip = w.fake.events().len();
    let (status, sub, _) = w.cancel("invoice_now=true").await;
    assert_eq!(status, 200, "{sub}");
    let invoice = w.invoice(sub["latest_invoice"].as_str().unwrap());
    assert_eq!(invoice["total"], 1000, "-500 + 1500, no new credit");
    assert_eq!(invoice["status"], "paid");
    assert_eq!(invoice["amount_paid"], 1000);
    assert_eq!(invoice["lines"]["data"].as_array().unwrap().len(), 2);
    assert!(w.fake.pending_invoice_items(&w.customer).is_empty());
    assert_eq!(
        w.types_since(skip),
        [
            "customer.subscription.deleted",
            "invoice.created",
            "invoice.paid"
        ]
    );
}

#[tokio::test]
async fn canceling_without_prorate_or_invoice_now_drops_pending_prorations() {
    let w = World::new(1).await;
    w.move_into_period(1, 2);
    let form = format!("items[0][id]={}&items[0][quantity]=3", w.item);
    ok(w.update(&form).await);
    // An invoice item of the customer's own, not a proration: it stays.
    let own = format!("customer={}&amount=700&currency=usd", w.customer);
    let own = ok(raw(&w.fake, "POST", "/v1/invoiceitems", &own).await);
    let skip = w.fake.events().len();
    assert_eq!(w.cancel("").await.0, 200);
    assert_eq!(
        w.types_since(skip),
        [
            "invoiceitem.deleted",
            "invoiceitem.deleted",
            "customer.subscription.deleted"
        ]
    );
    let deleted = &w.fake.events()[skip];
    assert_eq!(deleted["data"]["object"]["proration"], true);
    let pending = w.fake.pending_invoice_items(&w.customer);
    assert_eq!(pending, [own]);
}

#[tokio::test]
async fn delete_expands_latest_invoice() {
    let w = World::new(1).await;
    let (status, sub, _) = w.cancel("expand[]=latest_invoice").await;
    assert_eq!(status, 200, "{sub}");
    assert_eq!(sub["latest_invoice"]["object"], "invoice");
    assert_eq!(sub["latest_invoice"]["status"], "paid");
}

#[tokio::test]
async fn delete_refuses_as_stripe_does_and_changes_nothing() {
    let w = World::new(1).await;
    let skip = w.fake.events().len();
    let error = |body: &Value| body["error"].clone();

    let (status, body) = raw(&w.fake, "DELETE", "/v1/subscriptions/sub_nope", "").await;
    assert_eq!(status, 404);
    assert_eq!(error(&body)["code"], "resource_missing");
    assert_eq!(error(&body)["param"], "id");
    assert_eq!(error(&body)["message"], "No such subscription: 'sub_nope'");

    for (form, param) in [
        ("prorate=yes", "prorate"),
        ("invoice_now=1", "invoice_now"),
        ("expand[]=customer", "expand"),
        (
            "cancellation_details[feedback]=meh",
            "cancellation_details[feedback]",
        ),
    ] {
        let (status, body, _) = w.cancel(form).await;
        assert_eq!(status, 400, "{form}: {body}");
        assert_eq!(error(&body)["type"], "invalid_request_error", "{form}");
        assert_eq!(error(&body)["param"], param, "{form}");
    }
    let (_, body, _) = w.cancel("prorate=yes").await;
    assert_eq!(error(&body)["message"], "Invalid boolean: yes");
    assert_eq!(w.subscription()["status"], "active", "nothing changed");
    assert_eq!(w.fake.events().len(), skip, "no events");

    assert_eq!(w.cancel("").await.0, 200);
    let (status, body, _) = w.cancel("").await;
    assert_eq!(
        status, 404,
        "a canceled subscription is gone for DELETE: {body}"
    );
    assert_eq!(error(&body)["code"], "resource_missing");
    assert_eq!(
        w.types_since(skip),
        ["customer.subscription.deleted"],
        "canceled once"
    );
}

#[tokio::test]
async fn cancellation_details_are_kept() {
    let w = World::new(1).await;
    let form =
        "cancellation_details[comment]=Too+dear&cancellation_details[feedback]=too_expensive";
    let (status, sub, _) = w.cancel(form).await;
    assert_eq!(status, 200, "{sub}");
    let details = &sub["cancellation_details"];
    assert_eq!(details["comment"], "Too dear");
    assert_eq!(details["feedback"], "too_expensive");
    assert_eq!(details["reason"], "cancellation_requested");
}

#[tokio::test]
async fn the_test_helpers_still_schedule_and_end_a_subscription() {
    let w = World::new(1).await;
    let (_, end) = w.period();
    let skip = w.fake.events().len();
    w.fake.set_cancel_at(&w.subscription, end).await.unwrap();
    assert_eq!(w.subscription()["cancel_at"], end);
    w.fake.cancel_subscription(&w.subscription).await.unwrap();
    assert_eq!(w.subscription()["status"], "canceled");
    assert_eq!(
        w.types_since(skip),
        [
            "customer.subscription.updated",
            "customer.subscription.deleted"
        ]
    );
    let deleted = w.fake.events().last().unwrap().clone();
    assert_eq!(deleted["request"]["id"], Value::Null, "no API request");
    assert!(w.fake.cancel_subscription(&w.subscription).await.is_err());
}
