//! `proration_behavior` on `POST /v1/subscriptions/{id}`: pending prorations that the next
//! renewal picks up once, an invoice charged at once, or nothing; with exact amounts.

use chrono::DateTime;
use serde_json::Value;

use crate::helpers::{World, ok, raw, raw_with_id};

/// "15 Jan 2027": the date in a proration's description.
pub fn day(at: i64) -> String {
    DateTime::from_timestamp(at, 0)
        .unwrap()
        .format("%d %b %Y")
        .to_string()
}

fn by_amount(items: &[Value], amount: i64) -> Value {
    items
        .iter()
        .find(|i| i["amount"] == amount)
        .unwrap_or_else(|| panic!("no item of {amount} in {items:?}"))
        .clone()
}

#[tokio::test]
async fn create_prorations_leaves_a_credit_and_a_charge_pending() {
    let w = World::new(1).await;
    let (_, end) = w.period();
    let at = w.move_into_period(1, 2);
    let first_invoice = w.subscription()["latest_invoice"].clone();
    let first_line = w.invoice(first_invoice.as_str().unwrap())["lines"]["data"][0]["id"].clone();
    let skip = w.fake.events().len();

    // Quantity 1 → 3 at exactly half the period, with Stripe's default behaviour.
    let path = format!("/v1/subscriptions/{}", w.subscription);
    let form = format!("items[0][id]={}&items[0][quantity]=3", w.item);
    let (status, sub, request_id) = raw_with_id(&w.fake, "POST", &path, &form).await;
    assert_eq!(status, 200, "{sub}");
    assert_eq!(sub["items"]["data"][0]["quantity"], 3);
    assert_eq!(sub["latest_invoice"], first_invoice, "nothing invoiced yet");

    let pending = w.fake.pending_invoice_items(&w.customer);
    assert_eq!(pending.len(), 2, "{pending:?}");
    // Credit: 1000 × 1 for half the period; charge: 1000 × 3 for half the period.
    let (credit, charge) = (&pending[0], &pending[1]);
    assert_eq!(credit["amount"], -500);
    assert_eq!(credit["quantity"], 1);
    assert_eq!(credit["pricing"]["unit_amount_decimal"], "-500");
    assert_eq!(
        credit["description"],
        format!("Unused time on Pro after {}", day(at))
    );
    assert_eq!(charge["amount"], 1500);
    assert_eq!(charge["quantity"], 3);
    assert_eq!(charge["pricing"]["unit_amount_decimal"], "500");
    assert_eq!(
        charge["description"],
        format!("Remaining time on 3 × Pro after {}", day(at))
    );
    for item in &pending {
        assert_eq!(item["object"], "invoiceitem");
        assert_eq!(item["proration"], true);
        assert_eq!(item["discountable"], false);
        assert_eq!(item["invoice"], Value::Null);
        assert_eq!(item["period"]["start"], at);
        assert_eq!(item["period"]["end"], end);
        assert_eq!(item["pricing"]["price_details"]["price"], w.price.as_str());
        let parent = &item["parent"];
        assert_eq!(parent["type"], "subscription_details");
        assert_eq!(
            parent["subscription_details"]["subscription"],
            w.subscription.as_str()
        );
        assert_eq!(
            parent["subscription_details"]["subscription_item"],
            w.item.as_str()
        );
    }
    let credited = &credit["proration_details"]["credited_items"];
    assert_eq!(credited["type"], "invoice_line_items");
    assert_eq!(
        credited["invoice_line_item_details"]["invoice"],
        first_invoice
    );
    assert_eq!(
        credited["invoice_line_item_details"]["invoice_line_items"][0],
        first_line
    );
    assert_eq!(
        charge["proration_details"]["credited_items"],
        Value::Null,
        "a charge credits nothing"
    );

    assert_eq!(
        w.types_since(skip),
        [
            "invoiceitem.created",
            "invoiceitem.created",
            "customer.subscription.updated"
        ]
    );
    let events = &w.fake.events()[skip..];
    for event in events {
        assert_eq!(event["request"]["id"], request_id.as_str());
    }
    assert_eq!(events[0]["data"]["object"], *credit);
    assert_eq!(events[1]["data"]["object"], *charge);
    assert_eq!(w.fake.invoices().len(), 1, "no invoice made");
}

#[tokio::test]
async fn the_next_renewal_picks_up_pending_prorations_once() {
    let w = World::new(1).await;
    w.move_into_period(1, 2);
    let form = format!("items[0][id]={}&items[0][quantity]=3", w.item);
    ok(w.update(&form).await);
    let pending: Vec<String> = w
        .fake
        .pending_invoice_items(&w.customer)
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(pending.len(), 2);

    let renewal = w.fake.renew(&w.subscription).await.unwrap();
    let invoice = w.invoice(&renewal);
    assert_eq!(invoice["billing_reason"], "subscription_cycle");
    // The new period at 3 × 1000, then the prorations: -500 + 1500.
    assert_eq!(invoice["total"], 3000 - 500 + 1500);
    let lines = invoice["lines"]["data"].as_array().unwrap();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["amount"], 3000);
    assert_eq!(
        lines[0]["parent"]["subscription_item_details"]["proration"],
        false
    );
    for (line, (id, amount)) in lines[1..].iter().zip(pending.iter().zip([-500, 1500])) {
        assert_eq!(line["amount"], amount);
        assert_eq!(line["invoice"], renewal.as_str());
        let parent = &line["parent"];
        assert_eq!(parent["type"], "subscription_item_details");
        assert_eq!(parent["invoice_item_details"], Value::Null);
        let details = &parent["subscription_item_details"];
        assert_eq!(details["proration"], true);
        assert_eq!(details["invoice_item"], id.as_str());
        assert_eq!(details["subscription"], w.subscription.as_str());
        assert_eq!(details["subscription_item"], w.item.as_str());
    }
    assert!(
        w.fake.pending_invoice_items(&w.customer).is_empty(),
        "marked invoiced"
    );
    for item in w.fake.invoice_items() {
        assert_eq!(item["invoice"], renewal.as_str());
    }

    w.fake.pay_invoice(&renewal).await.unwrap();
    let next = w.fake.renew(&w.subscription).await.unwrap();
    let next = w.invoice(&next);
    assert_eq!(next["total"], 3000, "the prorations are billed once");
    assert_eq!(next["lines"]["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_price_change_prorates_both_prices_rounded_to_cents() {
    let w = World::new(1).await;
    // Two thirds done: a third of 1000 is 333.33…, of 2000 666.67.
    let at = w.move_into_period(2, 3);
    let form = format!("items[0][id]={}&items[0][price]={}", w.item, w.price_2000);
    ok(w.update(&form).await);
    let pending = w.fake.pending_invoice_items(&w.customer);
    assert_eq!(pending.len(), 2);
    let credit = by_amount(&pending, -333);
    let charge = by_amount(&pending, 667);
    assert_eq!(
        credit["pricing"]["price_details"]["price"],
        w.price.as_str()
    );
    assert_eq!(
        charge["pricing"]["price_details"]["price"],
        w.price_2000.as_str()
    );
    assert_eq!(credit["period"]["start"], at);
    assert_eq!(
        charge["description"],
        format!("Remaining time on Pro after {}", day(at))
    );
}

#[tokio::test]
async fn none_prorates_nothing() {
    let w = World::new(1).await;
    w.move_into_period(1, 2);
    let skip = w.fake.events().len();
    let form = format!(
        "items[0][id]={}&items[0][quantity]=3&proration_behavior=none",
        w.item
    );
    ok(w.update(&form).await);
    assert!(w.fake.pending_invoice_items(&w.customer).is_empty());
    assert!(w.fake.invoice_items().is_empty());
    assert_eq!(w.types_since(skip), ["customer.subscription.updated"]);
    let renewal = w.fake.renew(&w.subscription).await.unwrap();
    assert_eq!(w.invoice(&renewal)["total"], 3000, "the new quantity only");
}

#[tokio::test]
async fn always_invoice_charges_the_prorations_at_once() {
    let w = World::new(1).await;
    w.move_into_period(1, 2);
    let intents = w.fake.payment_intents().len();
    let skip = w.fake.events().len();
    let path = format!("/v1/subscriptions/{}", w.subscription);
    let form = format!(
        "items[0][id]={}&items[0][quantity]=3&proration_behavior=always_invoice",
        w.item
    );
    let (status, sub, request_id) = raw_with_id(&w.fake, "POST", &path, &form).await;
    assert_eq!(status, 200, "{sub}");

    let invoice_id = sub["latest_invoice"].as_str().unwrap().to_owned();
    let invoice = w.invoice(&invoice_id);
    assert_eq!(invoice["billing_reason"], "subscription_update");
    assert_eq!(invoice["status"], "paid");
    assert_eq!(invoice["total"], 1000, "-500 + 1500");
    assert_eq!(invoice["amount_paid"], 1000);
    assert_eq!(
        invoice["parent"]["subscription_details"]["subscription"],
        w.subscription.as_str()
    );
    let lines = invoice["lines"]["data"].as_array().unwrap();
    let amounts: Vec<i64> = lines
        .iter()
        .map(|l| l["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts, [-500, 1500]);
    assert!(
        lines
            .iter()
            .all(|l| l["parent"]["subscription_item_details"]["proration"] == true)
    );
    assert!(w.fake.pending_invoice_items(&w.customer).is_empty());
    let charged = w.fake.payment_intents();
    assert_eq!(charged.len(), intents + 1);
    assert_eq!(charged.last().unwrap()["status"], "succeeded");
    assert_eq!(charged.last().unwrap()["amount"], 1000);

    assert_eq!(
        w.types_since(skip),
        [
            "invoiceitem.created",
            "invoiceitem.created",
            "customer.subscription.updated",
            "invoice.created",
            "invoice.paid"
        ]
    );
    let events = &w.fake.events()[skip..];
    assert!(
        events
            .iter()
            .all(|e| e["request"]["id"] == request_id.as_str())
    );
    assert_eq!(
        events[2]["data"]["object"]["latest_invoice"],
        invoice_id.as_str()
    );
    assert!(
        events[2]["data"]["previous_attributes"]["latest_invoice"].is_string(),
        "the update names the new invoice"
    );
    assert_eq!(events[3]["data"]["object"]["status"], "draft");
    assert_eq!(events[4]["data"]["object"]["id"], invoice_id.as_str());
}

#[tokio::test]
async fn always_invoice_with_a_declining_card_leaves_the_subscription_past_due() {
    let w = World::new(1).await;
    w.fake
        .set_default_payment_method_kind(&w.customer, fake_stripe::PaymentMethodKind::Declining);
    w.move_into_period(1, 2);
    let skip = w.fake.events().len();
    let form = format!(
        "items[0][id]={}&items[0][quantity]=3&proration_behavior=always_invoice",
        w.item
    );
    ok(w.update(&form).await);
    let sub = w.subscription();
    assert_eq!(sub["status"], "past_due");
    let invoice = w.invoice(sub["latest_invoice"].as_str().unwrap());
    assert_eq!(invoice["status"], "open");
    assert_eq!(invoice["attempt_count"], 1);
    assert_eq!(invoice["amount_remaining"], 1000);
    assert_eq!(
        w.types_since(skip),
        [
            "invoiceitem.created",
            "invoiceitem.created",
            "customer.subscription.updated",
            "invoice.created",
            "invoice.payment_failed",
            "customer.subscription.updated"
        ]
    );
}

#[tokio::test]
async fn always_invoice_of_a_downgrade_credits_the_customer_balance() {
    let w = World::new(3).await;
    w.move_into_period(1, 2);
    let intents = w.fake.payment_intents().len();
    let form = format!(
        "items[0][id]={}&items[0][quantity]=1&proration_behavior=always_invoice",
        w.item
    );
    let sub = ok(w.update(&form).await);
    let invoice = w.invoice(sub["latest_invoice"].as_str().unwrap());
    // -1500 for 3 × 1000 unused, +500 for 1 × 1000 remaining.
    assert_eq!(invoice["total"], -1000);
    assert_eq!(invoice["amount_due"], 0);
    assert_eq!(invoice["amount_paid"], 0);
    assert_eq!(invoice["status"], "paid");
    assert_eq!(invoice["ending_balance"], -1000);
    assert_eq!(w.customer_balance(), -1000);
    assert_eq!(w.fake.payment_intents().len(), intents, "nothing to charge");
}

#[tokio::test]
async fn an_unknown_proration_behavior_is_refused_naming_the_param() {
    let w = World::new(1).await;
    w.move_into_period(1, 2);
    let skip = w.fake.events().len();
    let form = format!(
        "items[0][id]={}&items[0][quantity]=3&proration_behavior=sometimes",
        w.item
    );
    let (status, body) = w.update(&form).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["param"], "proration_behavior");
    assert_eq!(
        w.subscription()["items"]["data"][0]["quantity"],
        1,
        "unchanged"
    );
    assert!(w.fake.invoice_items().is_empty());
    assert_eq!(w.fake.events().len(), skip);
}

#[tokio::test]
async fn cancel_at_period_end_is_not_a_proration() {
    let w = World::new(1).await;
    w.move_into_period(1, 2);
    let skip = w.fake.events().len();
    let sub = ok(w.update("cancel_at_period_end=true").await);
    assert_eq!(sub["cancel_at_period_end"], true);
    assert!(w.fake.invoice_items().is_empty());
    assert_eq!(w.types_since(skip), ["customer.subscription.updated"]);
}

#[tokio::test]
async fn added_and_removed_items_prorate_one_side_each() {
    let w = World::new(1).await;
    w.move_into_period(1, 2);
    // Add a second item at 2000, then remove the first.
    let form = format!("items[0][price]={}", w.price_2000);
    ok(w.update(&form).await);
    let added = w.fake.pending_invoice_items(&w.customer);
    assert_eq!(added.len(), 1);
    assert_eq!(added[0]["amount"], 1000, "2000 for half the period");
    let form = format!("items[0][id]={}&items[0][deleted]=true", w.item);
    ok(w.update(&form).await);
    let pending = w.fake.pending_invoice_items(&w.customer);
    assert_eq!(pending.len(), 2);
    assert_eq!(
        pending[1]["amount"], -500,
        "1000 unused for half the period"
    );
    assert_eq!(
        pending[1]["parent"]["subscription_details"]["subscription_item"],
        w.item.as_str()
    );
    // The invoiceitems endpoint shows them too.
    let id = pending[1]["id"].as_str().unwrap();
    let (status, item) = raw(&w.fake, "GET", &format!("/v1/invoiceitems/{id}"), "").await;
    assert_eq!(status, 200);
    assert_eq!(item, pending[1]);
}
