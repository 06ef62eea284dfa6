//! Trials: the trialing subscription and its $0 invoice, how the trial ends with and
//! without a payment method (per `trial_settings.end_behavior.missing_payment_method`),
//! `trial_will_end`, `tick`, `trial_end=now`, and the refusals.

use fake_stripe::PaymentMethodKind;
use serde_json::Value;

use crate::helpers::{DAY, Shop, ok, raw_with_id, refused};

/// One calendar month after `at` (the fake's periods are calendar months).
fn month_after(at: i64) -> i64 {
    use chrono::{DateTime, Months};
    DateTime::from_timestamp(at, 0)
        .unwrap()
        .checked_add_months(Months::new(1))
        .unwrap()
        .timestamp()
}

/// A subscription with a 14-day trial for a customer with a card or not, `more` parameters
/// added; its id.
async fn trialing(shop: &Shop, card: bool, more: &str) -> (String, String) {
    let customer = shop.customer(card).await;
    let form = format!("trial_period_days=14&{more}");
    let sub = ok(shop.subscribe(&customer, &form).await);
    assert_eq!(sub["status"], "trialing", "{sub}");
    (customer, sub["id"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_trial_starts_trialing_with_a_paid_zero_invoice_and_no_payment_method() {
    let shop = Shop::new().await;
    let customer = shop.customer(false).await;
    let now = shop.fake.now();
    let skip = shop.fake.events().len();
    let form = "trial_period_days=14&payment_behavior=allow_incomplete\
                &trial_settings[end_behavior][missing_payment_method]=pause";
    let sub = ok(shop.subscribe(&customer, form).await);

    let end = now + 14 * DAY;
    assert_eq!(sub["status"], "trialing");
    assert_eq!(sub["trial_start"], now);
    assert_eq!(sub["trial_end"], end);
    assert_eq!(sub["billing_cycle_anchor"], end);
    assert_eq!(
        sub["trial_settings"]["end_behavior"]["missing_payment_method"],
        "pause"
    );
    assert_eq!(sub["default_payment_method"], Value::Null);
    let item = &sub["items"]["data"][0];
    assert_eq!(item["current_period_start"], now);
    assert_eq!(item["current_period_end"], end);

    let invoice = shop.invoice(sub["latest_invoice"].as_str().unwrap());
    assert_eq!(invoice["billing_reason"], "subscription_create");
    assert_eq!(invoice["status"], "paid");
    assert_eq!(invoice["subtotal"], 0);
    assert_eq!(invoice["total"], 0);
    assert_eq!(invoice["amount_due"], 0);
    assert_eq!(invoice["amount_paid"], 0);
    let line = &invoice["lines"]["data"][0];
    assert_eq!(line["amount"], 0);
    assert_eq!(line["description"], "Trial period for Pro");
    assert_eq!(line["period"]["start"], now);
    assert_eq!(line["period"]["end"], end);
    assert_eq!(
        shop.payment_intent_of(invoice["id"].as_str().unwrap())
            .await,
        None,
        "nothing was charged"
    );

    assert_eq!(
        shop.types_since(skip),
        ["customer.subscription.created", "invoice.paid"]
    );
    assert_eq!(shop.events_since(skip)[0]["data"]["object"], sub);
}

#[tokio::test]
async fn error_if_incomplete_and_default_incomplete_still_trial_without_a_card() {
    let shop = Shop::new().await;
    for behavior in ["error_if_incomplete", "default_incomplete"] {
        let customer = shop.customer(false).await;
        let form = format!("trial_period_days=7&payment_behavior={behavior}");
        let sub = ok(shop.subscribe(&customer, &form).await);
        assert_eq!(sub["status"], "trialing", "{behavior}");
        assert_eq!(
            shop.latest_invoice(sub["id"].as_str().unwrap())["status"],
            "paid"
        );
    }
    // Without a trial the same customer is refused (error_if_incomplete) as before.
    let customer = shop.customer(false).await;
    let error = refused(
        shop.subscribe(&customer, "payment_behavior=error_if_incomplete")
            .await,
        400,
    );
    assert_eq!(error["type"], "invalid_request_error");
}

#[tokio::test]
async fn trial_end_sets_the_exact_end_and_bad_trials_are_refused() {
    let shop = Shop::new().await;
    let customer = shop.customer(true).await;
    let now = shop.fake.now();
    let sub = ok(shop
        .subscribe(&customer, &format!("trial_end={}", now + 3600))
        .await);
    assert_eq!(sub["trial_end"], now + 3600);
    assert_eq!(sub["items"]["data"][0]["current_period_end"], now + 3600);
    // trial_end=now and trial_period_days=0 mean no trial: charged at once.
    for no_trial in ["trial_end=now", "trial_period_days=0"] {
        let sub = ok(shop.subscribe(&customer, no_trial).await);
        assert_eq!(sub["status"], "active", "{no_trial}");
        assert_eq!(sub["trial_end"], Value::Null);
        assert_eq!(
            shop.latest_invoice(sub["id"].as_str().unwrap())["total"],
            1000
        );
    }

    let count = shop.fake.subscriptions().len();
    let skip = shop.fake.events().len();
    for (form, param) in [
        (format!("trial_end={now}"), "trial_end"),
        (format!("trial_end={}", now - 10), "trial_end"),
        (format!("trial_end={}", now + 731 * DAY), "trial_end"),
        ("trial_end=soon".to_owned(), "trial_end"),
        ("trial_period_days=731".to_owned(), "trial_period_days"),
        ("trial_period_days=-1".to_owned(), "trial_period_days"),
        (
            format!("trial_period_days=3&trial_end={}", now + DAY),
            "trial_end",
        ),
        (
            "trial_period_days=3&trial_settings[end_behavior][missing_payment_method]=nap"
                .to_owned(),
            "trial_settings[end_behavior][missing_payment_method]",
        ),
    ] {
        let error = refused(shop.subscribe(&customer, &form).await, 400);
        assert_eq!(error["param"], param, "{form}: {error}");
    }
    assert_eq!(
        shop.fake.subscriptions().len(),
        count,
        "nothing was created"
    );
    assert_eq!(shop.fake.events().len(), skip, "no events");
}

#[tokio::test]
async fn a_trial_ending_with_a_card_charges_the_first_period() {
    let shop = Shop::new().await;
    let (customer, sub_id) = trialing(&shop, true, "").await;
    let before = shop.subscription(&sub_id);
    let (start, end) = (
        before["trial_start"].as_i64().unwrap(),
        before["trial_end"].as_i64().unwrap(),
    );
    let skip = shop.fake.events().len();
    shop.fake.end_trial(&sub_id).await.unwrap();

    assert_eq!(
        shop.types_since(skip),
        [
            "customer.subscription.trial_will_end",
            "customer.subscription.updated",
            "invoice.created",
            "invoice.paid"
        ]
    );
    let events = shop.events_since(skip);
    assert_eq!(events[0]["data"]["object"]["status"], "trialing");
    let updated = &events[1]["data"];
    assert_eq!(updated["object"]["status"], "active");
    assert_eq!(updated["previous_attributes"]["status"], "trialing");

    let sub = shop.subscription(&sub_id);
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["trial_end"], end, "the trial's end stays");
    assert_eq!(sub["billing_cycle_anchor"], end);
    let item = &sub["items"]["data"][0];
    assert_eq!(item["current_period_start"], end);
    assert_eq!(item["current_period_end"], month_after(end));

    let invoice = shop.invoice(sub["latest_invoice"].as_str().unwrap());
    assert_eq!(invoice["billing_reason"], "subscription_cycle");
    assert_eq!(invoice["status"], "paid");
    assert_eq!(invoice["total"], 1000);
    assert_eq!(invoice["amount_paid"], 1000);
    assert_eq!(invoice["period_start"], start, "looks back on the trial");
    assert_eq!(invoice["period_end"], end);
    assert_eq!(invoice["lines"]["data"][0]["period"]["start"], end);
    assert_eq!(events[2]["data"]["object"]["status"], "draft");
    let intent = shop
        .payment_intent_of(invoice["id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(intent["status"], "succeeded");
    assert_eq!(intent["amount"], 1000);
    assert_eq!(intent["customer"], customer.as_str());

    // The next period renews as any other.
    let renewal = shop.fake.renew(&sub_id).await.unwrap();
    assert_eq!(
        shop.invoice(&renewal)["lines"]["data"][0]["period"]["start"],
        month_after(end)
    );
    assert!(shop.fake.end_trial(&sub_id).await.is_err(), "no trial left");
}

#[tokio::test]
async fn without_a_payment_method_create_invoice_leaves_it_past_due() {
    let shop = Shop::new().await;
    let (_, sub_id) = trialing(&shop, false, "").await;
    assert_eq!(
        shop.subscription(&sub_id)["trial_settings"]["end_behavior"]["missing_payment_method"],
        "create_invoice",
        "Stripe's default"
    );
    let skip = shop.fake.events().len();
    shop.fake.end_trial(&sub_id).await.unwrap();
    assert_eq!(
        shop.types_since(skip),
        [
            "customer.subscription.trial_will_end",
            "customer.subscription.updated",
            "invoice.created",
            "invoice.payment_failed",
            "customer.subscription.updated"
        ]
    );
    let events = shop.events_since(skip);
    assert_eq!(events[1]["data"]["object"]["status"], "active");
    assert_eq!(events[4]["data"]["object"]["status"], "past_due");
    assert_eq!(events[4]["data"]["previous_attributes"]["status"], "active");
    let invoice = shop.latest_invoice(&sub_id);
    assert_eq!(invoice["status"], "open");
    assert_eq!(invoice["amount_remaining"], 1000);
    let intent = shop
        .payment_intent_of(invoice["id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(intent["status"], "requires_payment_method");
    assert_eq!(
        intent["last_payment_error"],
        Value::Null,
        "no charge attempted"
    );

    // Paying it later makes it active again.
    let skip = shop.fake.events().len();
    shop.fake
        .pay_invoice(invoice["id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(shop.subscription(&sub_id)["status"], "active");
    assert_eq!(
        shop.types_since(skip),
        ["customer.subscription.updated", "invoice.paid"]
    );
}

#[tokio::test]
async fn without_a_payment_method_pause_pauses_without_an_invoice() {
    let shop = Shop::new().await;
    let more = "trial_settings[end_behavior][missing_payment_method]=pause";
    let (_, sub_id) = trialing(&shop, false, more).await;
    let invoices = shop.fake.invoices().len();
    let skip = shop.fake.events().len();
    shop.fake.end_trial(&sub_id).await.unwrap();
    assert_eq!(
        shop.types_since(skip),
        [
            "customer.subscription.trial_will_end",
            "customer.subscription.paused",
            "customer.subscription.updated"
        ]
    );
    let sub = shop.subscription(&sub_id);
    assert_eq!(sub["status"], "paused");
    let updated = &shop.events_since(skip)[2]["data"];
    assert_eq!(updated["previous_attributes"]["status"], "trialing");
    assert_eq!(shop.fake.invoices().len(), invoices, "no invoice");

    // Resumed: a paid period from now.
    shop.fake.resume_subscription(&sub_id).await.unwrap();
    assert_eq!(shop.subscription(&sub_id)["status"], "active");
}

#[tokio::test]
async fn without_a_payment_method_cancel_cancels() {
    let shop = Shop::new().await;
    let more = "trial_settings[end_behavior][missing_payment_method]=cancel";
    let (_, sub_id) = trialing(&shop, false, more).await;
    let invoices = shop.fake.invoices().len();
    let skip = shop.fake.events().len();
    shop.fake.end_trial(&sub_id).await.unwrap();
    assert_eq!(
        shop.types_since(skip),
        [
            "customer.subscription.trial_will_end",
            "customer.subscription.deleted"
        ]
    );
    let sub = shop.subscription(&sub_id);
    assert_eq!(sub["status"], "canceled");
    assert_eq!(sub["ended_at"], shop.fake.now());
    assert_eq!(sub["canceled_at"], shop.fake.now());
    assert_eq!(
        sub["cancellation_details"]["reason"],
        "cancellation_requested"
    );
    assert_eq!(shop.fake.invoices().len(), invoices, "no invoice");
}

#[tokio::test]
async fn a_card_added_during_the_trial_is_charged_whatever_the_end_behavior() {
    let shop = Shop::new().await;
    let more = "trial_settings[end_behavior][missing_payment_method]=cancel";
    let (customer, sub_id) = trialing(&shop, false, more).await;
    shop.fake.set_default_payment_method(&customer);
    shop.fake.end_trial(&sub_id).await.unwrap();
    assert_eq!(shop.subscription(&sub_id)["status"], "active");
    assert_eq!(shop.latest_invoice(&sub_id)["status"], "paid");
}

#[tokio::test]
async fn a_declining_card_at_the_trial_end_makes_it_past_due() {
    let shop = Shop::new().await;
    let (customer, sub_id) = trialing(&shop, false, "").await;
    shop.fake
        .set_default_payment_method_kind(&customer, PaymentMethodKind::Declining);
    let skip = shop.fake.events().len();
    shop.fake.end_trial(&sub_id).await.unwrap();
    assert_eq!(
        shop.types_since(skip)[3..],
        ["invoice.payment_failed", "customer.subscription.updated"]
    );
    assert_eq!(shop.subscription(&sub_id)["status"], "past_due");
    let invoice = shop.latest_invoice(&sub_id);
    let intent = shop
        .payment_intent_of(invoice["id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(intent["last_payment_error"]["code"], "card_declined");
}

#[tokio::test]
async fn tick_warns_three_days_before_and_ends_the_trial_on_time() {
    let shop = Shop::new().await;
    let (_, sub_id) = trialing(&shop, true, "").await;
    let skip = shop.fake.events().len();
    shop.advance(11 * DAY - 1);
    shop.fake.tick().await.unwrap();
    assert!(shop.types_since(skip).is_empty(), "not yet");

    shop.advance(1);
    shop.fake.tick().await.unwrap();
    assert_eq!(
        shop.types_since(skip),
        ["customer.subscription.trial_will_end"]
    );
    shop.fake.tick().await.unwrap();
    assert_eq!(shop.types_since(skip).len(), 1, "sent once");
    assert!(
        shop.fake.trial_will_end(&sub_id).await.is_err(),
        "already sent"
    );

    shop.advance(3 * DAY - 1);
    shop.fake.tick().await.unwrap();
    assert_eq!(shop.subscription(&sub_id)["status"], "trialing");
    shop.advance(1);
    shop.fake.tick().await.unwrap();
    assert_eq!(
        shop.types_since(skip),
        [
            "customer.subscription.trial_will_end",
            "customer.subscription.updated",
            "invoice.created",
            "invoice.paid"
        ]
    );
    assert_eq!(shop.subscription(&sub_id)["status"], "active");
    shop.fake.tick().await.unwrap();
    assert_eq!(shop.types_since(skip).len(), 4, "nothing more is due");
}

#[tokio::test]
async fn trial_will_end_can_be_sent_by_hand_once_and_only_in_a_trial() {
    let shop = Shop::new().await;
    let (_, sub_id) = trialing(&shop, true, "").await;
    let skip = shop.fake.events().len();
    shop.fake.trial_will_end(&sub_id).await.unwrap();
    assert_eq!(
        shop.types_since(skip),
        ["customer.subscription.trial_will_end"]
    );
    assert!(shop.fake.trial_will_end(&sub_id).await.is_err());
    shop.fake.end_trial(&sub_id).await.unwrap();
    assert_eq!(
        shop.types_since(skip)[1..],
        [
            "customer.subscription.updated",
            "invoice.created",
            "invoice.paid"
        ],
        "not sent twice"
    );
    let customer = shop.customer(true).await;
    let active = ok(shop.subscribe(&customer, "").await);
    assert!(
        shop.fake
            .trial_will_end(active["id"].as_str().unwrap())
            .await
            .is_err()
    );
    assert!(shop.fake.renew(&sub_id).await.is_ok());
}

#[tokio::test]
async fn renewing_a_trial_is_refused() {
    let shop = Shop::new().await;
    let (_, sub_id) = trialing(&shop, true, "").await;
    let error = shop.fake.renew(&sub_id).await.unwrap_err();
    assert!(error.to_string().contains("trial"), "{error}");
}

#[tokio::test]
async fn trial_end_now_ends_the_trial_at_once() {
    let shop = Shop::new().await;
    let (_, sub_id) = trialing(&shop, true, "").await;
    shop.advance(2 * DAY);
    let now = shop.fake.now();
    let skip = shop.fake.events().len();
    let path = format!("/v1/subscriptions/{sub_id}");
    let (status, sub, request_id) = raw_with_id(
        &shop.fake,
        "POST",
        &path,
        "trial_end=now&metadata[plan]=pro",
    )
    .await;
    assert_eq!(status, 200, "{sub}");
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["trial_end"], now);
    assert_eq!(sub["billing_cycle_anchor"], now);
    assert_eq!(sub["metadata"]["plan"], "pro");
    let item = &sub["items"]["data"][0];
    assert_eq!(item["current_period_start"], now);
    assert_eq!(item["current_period_end"], month_after(now));
    assert_eq!(
        shop.types_since(skip),
        [
            "customer.subscription.trial_will_end",
            "customer.subscription.updated",
            "invoice.created",
            "invoice.paid"
        ]
    );
    let events = shop.events_since(skip);
    assert!(
        events
            .iter()
            .all(|e| e["request"]["id"] == request_id.as_str())
    );
    let previous = &events[1]["data"]["previous_attributes"];
    assert_eq!(previous["status"], "trialing");
    assert_eq!(
        previous["metadata"],
        serde_json::json!({"plan": null}),
        "the one update reports the request's other changes too"
    );
    let invoice = shop.invoice(sub["latest_invoice"].as_str().unwrap());
    assert_eq!(invoice["billing_reason"], "subscription_update");
    assert_eq!(invoice["total"], 1000);
    assert_eq!(invoice["status"], "paid");
}

#[tokio::test]
async fn a_future_trial_end_moves_the_trial() {
    let shop = Shop::new().await;
    let (_, sub_id) = trialing(&shop, true, "").await;
    let later = shop.fake.now() + 30 * DAY;
    let path = format!("/v1/subscriptions/{sub_id}");
    let sub = ok(shop.post(&path, &format!("trial_end={later}")).await);
    assert_eq!(sub["status"], "trialing");
    assert_eq!(sub["trial_end"], later);
    assert_eq!(sub["items"]["data"][0]["current_period_end"], later);
    shop.fake.end_trial(&sub_id).await.unwrap();
    let sub = shop.subscription(&sub_id);
    assert_eq!(sub["items"]["data"][0]["current_period_start"], later);

    // No trial to move any more; and a canceled subscription takes none.
    let error = refused(shop.post(&path, &format!("trial_end={later}")).await, 400);
    assert_eq!(error["param"], "trial_end");
}
