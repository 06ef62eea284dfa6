//! Discounts on subscriptions: redeemed on create and update, their objects and events,
//! what they take off invoices (exact amounts, rounding), how long they last, and Stripe's
//! refusals.

use serde_json::{Value, json};

use crate::helpers::{DAY, Shop, ok, raw, refused};

fn discount_ids(sub: &Value) -> Vec<String> {
    sub["discounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_percent_coupon_discounts_the_first_invoice_and_every_renewal() {
    let shop = Shop::new().await;
    let customer = shop.customer(true).await;
    let coupon = shop
        .coupon("id=QUARTER&percent_off=25&duration=forever")
        .await;
    let now = shop.fake.now();
    let skip = shop.fake.events().len();
    let sub = ok(shop
        .subscribe(
            &customer,
            &format!("items[0][quantity]=3&discounts[0][coupon]={coupon}"),
        )
        .await);
    let sub_id = sub["id"].as_str().unwrap();
    let ids = discount_ids(&sub);
    assert_eq!(ids.len(), 1);
    let di = ids[0].clone();
    assert!(di.starts_with("di_"), "{di}");

    let discount = shop
        .fake
        .discounts()
        .into_iter()
        .find(|d| d["id"] == di.as_str())
        .unwrap();
    assert_eq!(
        discount,
        json!({
            "id": di, "object": "discount", "checkout_session": null, "customer": customer,
            "customer_account": null, "end": null, "invoice": null, "invoice_item": null,
            "promotion_code": null, "source": {"coupon": "QUARTER", "type": "coupon"},
            "start": now, "subscription": sub_id, "subscription_item": null
        })
    );
    assert_eq!(
        shop.types_since(skip),
        [
            "customer.subscription.created",
            "customer.discount.created",
            "invoice.paid"
        ]
    );
    assert_eq!(shop.events_since(skip)[1]["data"]["object"], discount);

    // 3 × 1000, a quarter off.
    let invoice = shop.invoice(sub["latest_invoice"].as_str().unwrap());
    assert_eq!(invoice["subtotal"], 3000);
    assert_eq!(invoice["total"], 2250);
    assert_eq!(invoice["amount_due"], 2250);
    assert_eq!(invoice["amount_paid"], 2250);
    assert_eq!(invoice["discounts"], json!([di]));
    assert_eq!(
        invoice["total_discount_amounts"],
        json!([{"amount": 750, "discount": di}])
    );
    let line = &invoice["lines"]["data"][0];
    assert_eq!(line["amount"], 3000, "a line's amount is before discounts");
    assert_eq!(
        line["discount_amounts"],
        json!([{"amount": 750, "discount": di}])
    );
    let intent = shop
        .payment_intent_of(invoice["id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(intent["amount"], 2250);
    assert_eq!(shop.fake.coupons()[0]["times_redeemed"], 1);

    // Forever: the renewal too.
    let renewal = shop.fake.renew(sub_id).await.unwrap();
    let renewal = shop.invoice(&renewal);
    assert_eq!(renewal["total"], 2250);
    assert_eq!(renewal["discounts"], json!([di]));
}

#[tokio::test]
async fn percentages_round_half_up_on_each_line() {
    let shop = Shop::new().await;
    let customer = shop.customer(true).await;
    let (p999, p997) = (shop.price(999).await, shop.price(997).await);
    let coupon = shop.coupon("percent_off=50&duration=forever").await;
    let form = format!(
        "customer={customer}&items[0][price]={p999}&items[1][price]={p997}\
         &discounts[0][coupon]={coupon}"
    );
    let sub = ok(shop.post("/v1/subscriptions", &form).await);
    let invoice = shop.invoice(sub["latest_invoice"].as_str().unwrap());
    let shares: Vec<&Value> = invoice["lines"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["discount_amounts"][0]["amount"])
        .collect();
    // 499.5 → 500 and 498.5 → 499: 999 off, where half of the 1996 total would be 998.
    assert_eq!(shares, [&json!(500), &json!(499)]);
    assert_eq!(invoice["total_discount_amounts"][0]["amount"], 999);
    assert_eq!(invoice["subtotal"], 1996);
    assert_eq!(invoice["total"], 997);
}

#[tokio::test]
async fn an_amount_off_is_spread_over_the_lines_and_never_below_zero() {
    let shop = Shop::new().await;
    let customer = shop.customer(true).await;
    let p2000 = shop.price(2000).await;
    let coupon = shop
        .coupon("amount_off=500&currency=usd&duration=forever")
        .await;
    let form = format!(
        "customer={customer}&items[0][price]={}&items[1][price]={p2000}\
         &discounts[0][coupon]={coupon}",
        shop.price
    );
    let sub = ok(shop.post("/v1/subscriptions", &form).await);
    let invoice = shop.invoice(sub["latest_invoice"].as_str().unwrap());
    let lines = invoice["lines"]["data"].as_array().unwrap();
    // 500 × 1000/3000 = 166.67 → 167; the last line takes the rest.
    assert_eq!(lines[0]["discount_amounts"][0]["amount"], 167);
    assert_eq!(lines[1]["discount_amounts"][0]["amount"], 333);
    assert_eq!(invoice["total"], 2500);

    // More off than the invoice: it comes to 0, paid without a charge.
    let big = shop
        .coupon("amount_off=5000&currency=usd&duration=forever")
        .await;
    let sub = ok(shop
        .subscribe(&customer, &format!("discounts[0][coupon]={big}"))
        .await);
    assert_eq!(sub["status"], "active");
    let invoice = shop.invoice(sub["latest_invoice"].as_str().unwrap());
    assert_eq!(invoice["total_discount_amounts"][0]["amount"], 1000);
    assert_eq!(invoice["total"], 0);
    assert_eq!(invoice["status"], "paid");
    assert_eq!(
        shop.payment_intent_of(invoice["id"].as_str().unwrap())
            .await,
        None
    );
}

#[tokio::test]
async fn a_once_coupon_discounts_one_invoice_and_ends_at_the_next() {
    let shop = Shop::new().await;
    let customer = shop.customer(true).await;
    let coupon = shop.coupon("percent_off=50&duration=once").await;
    let sub = ok(shop
        .subscribe(&customer, &format!("discounts[0][coupon]={coupon}"))
        .await);
    let sub_id = sub["id"].as_str().unwrap();
    let di = discount_ids(&sub)[0].clone();
    assert_eq!(shop.latest_invoice(sub_id)["total"], 500);
    assert_eq!(
        shop.subscription(sub_id)["discounts"],
        json!([di]),
        "kept for now"
    );

    let skip = shop.fake.events().len();
    let renewal = shop.fake.renew(sub_id).await.unwrap();
    assert_eq!(
        shop.types_since(skip),
        ["customer.discount.deleted", "invoice.created"]
    );
    assert_eq!(
        shop.events_since(skip)[0]["data"]["object"]["id"],
        di.as_str()
    );
    let invoice = shop.invoice(&renewal);
    assert_eq!(invoice["total"], 1000);
    assert_eq!(invoice["discounts"], json!([]));
    assert_eq!(invoice["total_discount_amounts"], json!([]));
    assert_eq!(shop.subscription(sub_id)["discounts"], json!([]));

    let skip = shop.fake.events().len();
    shop.fake.pay_invoice(&renewal).await.unwrap();
    let updated = &shop.events_since(skip)[0];
    assert_eq!(updated["type"], "customer.subscription.updated");
    assert_eq!(
        updated["data"]["previous_attributes"]["discounts"],
        json!([di])
    );
}

#[tokio::test]
async fn a_repeating_coupon_lasts_its_months() {
    let shop = Shop::new().await;
    let customer = shop.customer(true).await;
    let coupon = shop
        .coupon("percent_off=10&duration=repeating&duration_in_months=2")
        .await;
    let now = shop.fake.now();
    let sub = ok(shop
        .subscribe(&customer, &format!("discounts[0][coupon]={coupon}"))
        .await);
    let sub_id = sub["id"].as_str().unwrap();
    let di = discount_ids(&sub)[0].clone();
    let end = shop
        .fake
        .discounts()
        .into_iter()
        .find(|d| d["id"] == di.as_str())
        .unwrap()["end"]
        .as_i64()
        .unwrap();
    let two_months = chrono::DateTime::from_timestamp(now, 0)
        .unwrap()
        .checked_add_months(chrono::Months::new(2))
        .unwrap()
        .timestamp();
    assert_eq!(end, two_months);

    assert_eq!(shop.latest_invoice(sub_id)["total"], 900);
    let first = shop.fake.renew(sub_id).await.unwrap();
    assert_eq!(shop.invoice(&first)["total"], 900, "month two");
    let skip = shop.fake.events().len();
    let second = shop.fake.renew(sub_id).await.unwrap();
    assert_eq!(shop.invoice(&second)["total"], 1000, "month three: ended");
    assert_eq!(
        shop.types_since(skip),
        ["customer.discount.deleted", "invoice.created"]
    );
}

#[tokio::test]
async fn a_promotion_code_is_redeemed_once_per_subscription_within_its_limits() {
    let shop = Shop::new().await;
    let coupon = shop
        .coupon("id=FRIEND&percent_off=20&duration=forever")
        .await;
    let promo = ok(shop
        .post(
            "/v1/promotion_codes",
            &format!(
                "promotion[type]=coupon&promotion[coupon]={coupon}&code=FRIEND&max_redemptions=1"
            ),
        )
        .await)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let customer = shop.customer(true).await;
    let sub = ok(shop
        .subscribe(&customer, &format!("discounts[0][promotion_code]={promo}"))
        .await);
    let di = discount_ids(&sub)[0].clone();
    let discount = shop
        .fake
        .discounts()
        .into_iter()
        .find(|d| d["id"] == di.as_str())
        .unwrap();
    assert_eq!(discount["promotion_code"], promo.as_str());
    assert_eq!(discount["source"]["coupon"], "FRIEND");
    assert_eq!(
        shop.latest_invoice(sub["id"].as_str().unwrap())["total"],
        800
    );
    assert_eq!(shop.fake.promotion_codes()[0]["times_redeemed"], 1);
    assert_eq!(shop.fake.coupons()[0]["times_redeemed"], 1);

    // Used up.
    let other = shop.customer(true).await;
    let error = refused(
        shop.subscribe(&other, &format!("discounts[0][promotion_code]={promo}"))
            .await,
        400,
    );
    assert_eq!(error["param"], "discounts[0][promotion_code]");

    // For one customer only; inactive.
    let only = ok(shop
        .post(
            "/v1/promotion_codes",
            &format!("promotion[type]=coupon&promotion[coupon]={coupon}&customer={customer}"),
        )
        .await)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let error = refused(
        shop.subscribe(&other, &format!("discounts[0][promotion_code]={only}"))
            .await,
        400,
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("cannot be redeemed by this customer"),
        "{error}"
    );
    ok(shop
        .post(&format!("/v1/promotion_codes/{only}"), "active=false")
        .await);
    let error = refused(
        shop.subscribe(&customer, &format!("discounts[0][promotion_code]={only}"))
            .await,
        400,
    );
    assert!(
        error["message"].as_str().unwrap().contains("not active"),
        "{error}"
    );
}

#[tokio::test]
async fn updates_replace_keep_and_clear_discounts() {
    let shop = Shop::new().await;
    let customer = shop.customer(true).await;
    let a = shop.coupon("id=A&percent_off=10&duration=forever").await;
    let b = shop
        .coupon("id=B&amount_off=100&currency=usd&duration=forever")
        .await;
    let sub = ok(shop
        .subscribe(&customer, &format!("discounts[0][coupon]={a}"))
        .await);
    let sub_id = sub["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/subscriptions/{sub_id}");
    let di_a = discount_ids(&sub)[0].clone();

    // Keep A, add B.
    let skip = shop.fake.events().len();
    let sub = ok(shop
        .post(
            &path,
            &format!("discounts[0][discount]={di_a}&discounts[1][coupon]={b}"),
        )
        .await);
    let ids = discount_ids(&sub);
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], di_a);
    let di_b = ids[1].clone();
    assert_eq!(
        shop.types_since(skip),
        ["customer.subscription.updated", "customer.discount.created"]
    );
    let events = shop.events_since(skip);
    assert_eq!(
        events[0]["data"]["previous_attributes"]["discounts"],
        json!([di_a])
    );
    assert_eq!(events[1]["data"]["object"]["id"], di_b.as_str());
    // Both on the next invoice, one after the other: 10% of 1000, then 100.
    let renewal = shop.fake.renew(&sub_id).await.unwrap();
    let renewal = shop.invoice(&renewal);
    assert_eq!(
        renewal["total_discount_amounts"],
        json!([{"amount": 100, "discount": di_a}, {"amount": 100, "discount": di_b}])
    );
    assert_eq!(renewal["total"], 800);
    shop.fake
        .pay_invoice(renewal["id"].as_str().unwrap())
        .await
        .unwrap();

    // Replace both with B again: A and the old B go, a new B comes.
    let skip = shop.fake.events().len();
    let sub = ok(shop.post(&path, &format!("discounts[0][coupon]={b}")).await);
    let ids = discount_ids(&sub);
    assert_eq!(ids.len(), 1);
    assert_ne!(ids[0], di_b, "a new discount");
    assert_eq!(
        shop.types_since(skip),
        [
            "customer.subscription.updated",
            "customer.discount.deleted",
            "customer.discount.deleted",
            "customer.discount.created"
        ]
    );

    // Not sent: unchanged. Empty: cleared.
    let skip = shop.fake.events().len();
    let sub = ok(shop.post(&path, "metadata[x]=1").await);
    assert_eq!(discount_ids(&sub), ids);
    let sub = ok(shop.post(&path, "discounts=").await);
    assert_eq!(sub["discounts"], json!([]));
    assert_eq!(
        shop.types_since(skip),
        [
            "customer.subscription.updated",
            "customer.subscription.updated",
            "customer.discount.deleted"
        ]
    );
    let renewal = shop.fake.renew(&sub_id).await.unwrap();
    assert_eq!(shop.invoice(&renewal)["total"], 1000);
}

#[tokio::test]
async fn discounts_are_refused_as_stripe_refuses_them() {
    let shop = Shop::new().await;
    let customer = shop.customer(true).await;
    shop.coupon("id=P10&percent_off=10&duration=forever").await;
    shop.coupon("id=EUR&amount_off=100&currency=eur").await;
    shop.coupon("id=ONE&percent_off=10&max_redemptions=1").await;
    ok(shop.subscribe(&customer, "discounts[0][coupon]=ONE").await);
    let subs = shop.fake.subscriptions().len();
    let skip = shop.fake.events().len();
    for (form, param, code) in [
        (
            "discounts[0][coupon]=NOPE",
            "discounts[0][coupon]",
            Some("resource_missing"),
        ),
        (
            "discounts[0][promotion_code]=promo_nope",
            "discounts[0][promotion_code]",
            Some("resource_missing"),
        ),
        (
            "discounts[0][discount]=di_nope",
            "discounts[0][discount]",
            Some("resource_missing"),
        ),
        (
            "discounts[0][coupon]=P10&discounts[0][promotion_code]=promo_x",
            "discounts[0]",
            None,
        ),
        (
            "discounts[0][coupon]=P10&discounts[1][coupon]=P10",
            "discounts[1][coupon]",
            None,
        ),
        ("discounts[0][coupon]=EUR", "discounts[0][coupon]", None),
        ("discounts[0][coupon]=ONE", "discounts[0][coupon]", None),
    ] {
        let error = refused(shop.subscribe(&customer, form).await, 400);
        assert_eq!(error["param"], param, "{form}: {error}");
        assert_eq!(error["code"], json!(code), "{form}: {error}");
    }
    assert_eq!(shop.fake.subscriptions().len(), subs, "nothing created");
    assert_eq!(shop.fake.events().len(), skip, "no events");
    assert_eq!(
        shop.fake
            .coupons()
            .iter()
            .find(|c| c["id"] == "P10")
            .unwrap()["times_redeemed"],
        0
    );

    // A deleted coupon can no longer be redeemed, but its discounts go on.
    let sub = ok(shop.subscribe(&customer, "discounts[0][coupon]=P10").await);
    raw(&shop.fake, "DELETE", "/v1/coupons/P10", "").await;
    refused(
        shop.subscribe(&customer, "discounts[0][coupon]=P10").await,
        400,
    );
    let renewal = shop.fake.renew(sub["id"].as_str().unwrap()).await.unwrap();
    assert_eq!(shop.invoice(&renewal)["total"], 900);
    // A canceled subscription takes no discounts.
    let path = format!("/v1/subscriptions/{}", sub["id"].as_str().unwrap());
    raw(&shop.fake, "DELETE", &path, "").await;
    refused(shop.post(&path, "discounts=").await, 400);
}

#[tokio::test]
async fn a_once_coupon_waits_out_the_free_trial() {
    let shop = Shop::new().await;
    let customer = shop.customer(true).await;
    let coupon = shop.coupon("percent_off=50&duration=once").await;
    let sub = ok(shop
        .subscribe(
            &customer,
            &format!("trial_period_days=7&discounts[0][coupon]={coupon}"),
        )
        .await);
    let sub_id = sub["id"].as_str().unwrap();
    let di = discount_ids(&sub)[0].clone();
    let trial_invoice = shop.latest_invoice(sub_id);
    assert_eq!(trial_invoice["total"], 0);
    assert_eq!(
        trial_invoice["total_discount_amounts"],
        json!([{"amount": 0, "discount": di}])
    );

    shop.fake.end_trial(sub_id).await.unwrap();
    let first_paid = shop.latest_invoice(sub_id);
    assert_eq!(
        first_paid["total"], 500,
        "the $0 trial invoice did not use it"
    );
    assert_eq!(first_paid["amount_paid"], 500);

    let skip = shop.fake.events().len();
    let renewal = shop.fake.renew(sub_id).await.unwrap();
    assert_eq!(shop.invoice(&renewal)["total"], 1000);
    assert_eq!(shop.types_since(skip)[0], "customer.discount.deleted");
}

#[tokio::test]
async fn a_repeating_coupon_counts_its_months_from_the_redemption_through_a_trial() {
    let shop = Shop::new().await;
    let customer = shop.customer(true).await;
    let coupon = shop
        .coupon("percent_off=10&duration=repeating&duration_in_months=1")
        .await;
    // A 40-day trial outlasts the one month: nothing is left for the first paid period.
    let sub = ok(shop
        .subscribe(
            &customer,
            &format!("trial_period_days=40&discounts[0][coupon]={coupon}"),
        )
        .await);
    let sub_id = sub["id"].as_str().unwrap();
    shop.advance(40 * DAY);
    let skip = shop.fake.events().len();
    shop.fake.tick().await.unwrap();
    let types = shop.types_since(skip);
    assert_eq!(types[1], "customer.discount.deleted", "{types:?}");
    assert_eq!(shop.latest_invoice(sub_id)["total"], 1000);
}

#[tokio::test]
async fn discounts_expand_on_subscriptions_and_invoices() {
    let shop = Shop::new().await;
    let customer = shop.customer(true).await;
    let coupon = shop.coupon("percent_off=10&duration=forever").await;
    let sub = ok(shop
        .subscribe(
            &customer,
            &format!(
                "discounts[0][coupon]={coupon}&expand[0]=discounts\
                 &expand[1]=latest_invoice.discounts"
            ),
        )
        .await);
    assert_eq!(sub["discounts"][0]["object"], "discount");
    assert_eq!(sub["discounts"][0]["source"]["coupon"], coupon.as_str());
    assert_eq!(sub["latest_invoice"]["discounts"][0]["object"], "discount");
    let stored = shop.subscription(sub["id"].as_str().unwrap());
    assert!(stored["discounts"][0].is_string(), "stored and sent as ids");
    let path = format!(
        "/v1/invoices/{}",
        stored["latest_invoice"].as_str().unwrap()
    );
    let invoice = ok(raw(&shop.fake, "GET", &path, "expand[]=discounts").await);
    assert_eq!(invoice["discounts"][0]["id"], stored["discounts"][0]);
    let error = refused(
        raw(
            &shop.fake,
            "GET",
            &format!("/v1/subscriptions/{}", stored["id"].as_str().unwrap()),
            "expand[]=discounts.source.coupon",
        )
        .await,
        400,
    );
    assert_eq!(error["param"], "expand");
}
