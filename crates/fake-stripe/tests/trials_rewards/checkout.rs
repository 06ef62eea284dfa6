//! Trials and discounts through Checkout Sessions: `subscription_data[trial_*]`,
//! `payment_method_collection=if_required`, `discounts[...]`, `allow_promotion_codes` and a
//! code the customer types.

use fake_stripe::PaymentMethodKind;
use serde_json::{Value, json};

use crate::helpers::{DAY, Shop, find, ok, refused};

impl Shop {
    /// A subscription-mode session for one [`Shop::price`], with `more` parameters.
    async fn session(&self, customer: Option<&str>, more: &str) -> Value {
        let customer = customer.map_or(String::new(), |c| format!("customer={c}&"));
        let form = format!(
            "{customer}mode=subscription&line_items[0][price]={}&line_items[0][quantity]=1\
             &success_url=https://example.test/ok&{more}",
            self.price
        );
        ok(self.post("/v1/checkout/sessions", &form).await)
    }

    fn session_now(&self, id: &str) -> Value {
        find(self.fake.checkout_sessions(), id)
    }

    fn customer_object(&self, id: &str) -> Value {
        find(self.fake.customers(), id)
    }
}

#[tokio::test]
async fn a_checkout_trial_starts_trialing_and_saves_the_card() {
    let shop = Shop::new().await;
    let now = shop.fake.now();
    let session = shop
        .session(
            None,
            "subscription_data[trial_period_days]=7&customer_email=ada@example.test",
        )
        .await;
    assert_eq!(session["amount_subtotal"], 0, "nothing due today");
    assert_eq!(session["amount_total"], 0);
    assert_eq!(session["payment_method_collection"], "always");
    let skip = shop.fake.events().len();
    shop.fake
        .complete_checkout(session["id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(
        shop.types_since(skip),
        [
            "customer.created",
            "customer.subscription.created",
            "invoice.paid",
            "checkout.session.completed"
        ]
    );
    let completed = shop.session_now(session["id"].as_str().unwrap());
    assert_eq!(completed["payment_status"], "no_payment_required");
    assert_eq!(completed["amount_total"], 0);
    let sub = shop.subscription(completed["subscription"].as_str().unwrap());
    assert_eq!(sub["status"], "trialing");
    assert_eq!(sub["trial_end"], now + 7 * DAY);
    let customer = shop.customer_object(completed["customer"].as_str().unwrap());
    assert!(
        customer["invoice_settings"]["default_payment_method"].is_string(),
        "the card entered on the page is saved"
    );
    shop.fake
        .end_trial(sub["id"].as_str().unwrap())
        .await
        .unwrap();
    let sub = shop.subscription(sub["id"].as_str().unwrap());
    assert_eq!(sub["status"], "active");
    assert_eq!(
        shop.latest_invoice(sub["id"].as_str().unwrap())["status"],
        "paid"
    );
}

#[tokio::test]
async fn if_required_collects_no_payment_method_for_a_trial() {
    let shop = Shop::new().await;
    let customer = shop.customer(false).await;
    let session = shop
        .session(
            Some(&customer),
            "payment_method_collection=if_required&subscription_data[trial_period_days]=14\
             &subscription_data[trial_settings][end_behavior][missing_payment_method]=cancel",
        )
        .await;
    let id = session["id"].as_str().unwrap();
    assert_eq!(session["payment_method_collection"], "if_required");
    let error = shop
        .fake
        .complete_checkout_with(id, PaymentMethodKind::Card)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("collects no payment method"),
        "{error}"
    );
    assert_eq!(shop.session_now(id)["status"], "open", "nothing changed");

    shop.fake.complete_checkout(id).await.unwrap();
    let completed = shop.session_now(id);
    assert_eq!(completed["payment_status"], "no_payment_required");
    assert_eq!(
        shop.customer_object(&customer)["invoice_settings"]["default_payment_method"],
        Value::Null
    );
    let sub_id = completed["subscription"].as_str().unwrap();
    let sub = shop.subscription(sub_id);
    assert_eq!(sub["status"], "trialing");
    assert_eq!(
        sub["trial_settings"]["end_behavior"]["missing_payment_method"],
        "cancel"
    );
    assert_eq!(sub["default_payment_method"], Value::Null);
    shop.fake.end_trial(sub_id).await.unwrap();
    assert_eq!(shop.subscription(sub_id)["status"], "canceled");
}

#[tokio::test]
async fn session_discounts_show_on_the_session_and_the_subscription() {
    let shop = Shop::new().await;
    let coupon = shop
        .coupon("id=LAUNCH&percent_off=20&duration=forever")
        .await;
    let customer = shop.customer(true).await;
    let session = shop
        .session(Some(&customer), &format!("discounts[0][coupon]={coupon}"))
        .await;
    assert_eq!(session["amount_subtotal"], 1000);
    assert_eq!(session["amount_total"], 800);
    assert_eq!(session["total_details"]["amount_discount"], 200);
    assert_eq!(
        session["discounts"],
        json!([{"coupon": "LAUNCH", "promotion_code": null}])
    );
    assert_eq!(session["allow_promotion_codes"], Value::Null);
    let skip = shop.fake.events().len();
    shop.fake
        .complete_checkout(session["id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(
        shop.types_since(skip),
        [
            "customer.subscription.created",
            "customer.discount.created",
            "invoice.paid",
            "checkout.session.completed"
        ]
    );
    let completed = shop.session_now(session["id"].as_str().unwrap());
    assert_eq!(completed["payment_status"], "paid");
    assert_eq!(completed["amount_total"], 800);
    let sub_id = completed["subscription"].as_str().unwrap();
    let invoice = shop.latest_invoice(sub_id);
    assert_eq!(invoice["total"], 800);
    assert_eq!(invoice["amount_paid"], 800);
    let discount = &shop.events_since(skip)[1]["data"]["object"];
    assert_eq!(discount["subscription"], sub_id);
    assert_eq!(discount["checkout_session"], Value::Null);

    // Both ways at once are refused.
    let form = format!(
        "mode=subscription&line_items[0][price]={}&allow_promotion_codes=true\
         &discounts[0][coupon]={coupon}",
        shop.price
    );
    let error = refused(shop.post("/v1/checkout/sessions", &form).await, 400);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("allow_promotion_codes, discounts"),
        "{error}"
    );
    // A trial outside subscription mode is refused.
    let form = format!(
        "mode=payment&line_items[0][price]={}&subscription_data[trial_period_days]=3",
        shop.price
    );
    refused(shop.post("/v1/checkout/sessions", &form).await, 400);
}

#[tokio::test]
async fn a_code_typed_at_checkout_becomes_the_subscription_discount() {
    let shop = Shop::new().await;
    shop.fake
        .create_coupon_in_dashboard(&[
            ("id", "HALF"),
            ("percent_off", "50"),
            ("duration", "repeating"),
            ("duration_in_months", "3"),
        ])
        .await
        .unwrap();
    let promo = shop
        .fake
        .create_promotion_code_in_dashboard("HALF", "HALFOFF")
        .await
        .unwrap();
    let plain = shop.session(None, "").await;
    let error = shop
        .fake
        .complete_checkout_with_code(plain["id"].as_str().unwrap(), "HALFOFF")
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("allow_promotion_codes"),
        "{error}"
    );

    let session = shop.session(None, "allow_promotion_codes=true").await;
    let id = session["id"].as_str().unwrap();
    assert_eq!(session["allow_promotion_codes"], true);
    assert_eq!(session["amount_total"], 1000);
    let skip = shop.fake.events().len();
    assert!(
        shop.fake
            .complete_checkout_with_code(id, "NOSUCH")
            .await
            .is_err()
    );
    assert_eq!(shop.session_now(id)["status"], "open");
    assert_eq!(shop.fake.events().len(), skip, "nothing happened");

    shop.fake
        .complete_checkout_with_code(id, "halfoff")
        .await
        .unwrap();
    let completed = shop.session_now(id);
    assert_eq!(
        completed["discounts"],
        json!([{"coupon": "HALF", "promotion_code": promo}])
    );
    assert_eq!(completed["amount_subtotal"], 1000);
    assert_eq!(completed["amount_total"], 500);
    assert_eq!(completed["total_details"]["amount_discount"], 500);
    let sub = shop.subscription(completed["subscription"].as_str().unwrap());
    let discount = find(shop.fake.discounts(), sub["discounts"][0].as_str().unwrap());
    assert_eq!(discount["promotion_code"], promo.as_str());
    assert_eq!(discount["source"]["coupon"], "HALF");
    assert!(discount["end"].is_i64(), "repeating: it ends");
    assert_eq!(shop.fake.promotion_codes()[0]["times_redeemed"], 1);
    assert_eq!(
        shop.types_since(skip),
        [
            "customer.created",
            "customer.subscription.created",
            "customer.discount.created",
            "invoice.paid",
            "checkout.session.completed"
        ]
    );
}

#[tokio::test]
async fn a_trial_with_a_code_pays_nothing_now_and_the_discounted_price_after() {
    let shop = Shop::new().await;
    let coupon = shop
        .coupon("id=TEN&amount_off=100&currency=usd&duration=forever")
        .await;
    let code = ok(shop
        .post(
            "/v1/promotion_codes",
            &format!("promotion[type]=coupon&promotion[coupon]={coupon}&code=TEN"),
        )
        .await);
    let session = shop
        .session(
            None,
            "allow_promotion_codes=true&subscription_data[trial_period_days]=5",
        )
        .await;
    let id = session["id"].as_str().unwrap();
    shop.fake
        .complete_checkout_with_code(id, "ten")
        .await
        .unwrap();
    let completed = shop.session_now(id);
    assert_eq!(completed["amount_total"], 0);
    assert_eq!(completed["payment_status"], "no_payment_required");
    assert_eq!(completed["discounts"][0]["promotion_code"], code["id"]);
    let sub_id = completed["subscription"].as_str().unwrap();
    shop.fake.end_trial(sub_id).await.unwrap();
    assert_eq!(shop.latest_invoice(sub_id)["total"], 900);
}

/// A request to the hosted checkout page; returns the status and the HTML.
async fn page(shop: &Shop, method: &str, path: &str, form: &str) -> (u16, String) {
    use http_body_util::{BodyExt, Full};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<bytes::Bytes>>();
    let request = hyper::Request::builder()
        .method(method)
        .uri(format!("{}{path}", shop.fake.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(bytes::Bytes::from(form.to_owned())))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn the_hosted_page_takes_a_promotion_code_when_the_session_allows_them() {
    let shop = Shop::new().await;
    shop.coupon("id=PAGE&percent_off=10&duration=forever").await;
    ok(shop
        .post(
            "/v1/promotion_codes",
            "promotion[type]=coupon&promotion[coupon]=PAGE&code=PAGE10",
        )
        .await);
    let plain = shop.session(None, "").await;
    let (_, html) = page(
        &shop,
        "GET",
        &format!("/checkout/{}", plain["id"].as_str().unwrap()),
        "",
    )
    .await;
    assert!(!html.contains("promotion_code"), "{html}");

    let session = shop.session(None, "allow_promotion_codes=true").await;
    let id = session["id"].as_str().unwrap();
    let (status, html) = page(&shop, "GET", &format!("/checkout/{id}"), "").await;
    assert_eq!(status, 200);
    assert!(html.contains("name=\"promotion_code\""), "{html}");
    let (status, html) = page(
        &shop,
        "POST",
        &format!("/checkout/{id}/complete"),
        "promotion_code=nope",
    )
    .await;
    assert_eq!(status, 409, "{html}");
    assert_eq!(shop.session_now(id)["status"], "open");
    let (status, html) = page(
        &shop,
        "POST",
        &format!("/checkout/{id}/complete"),
        "promotion_code=page10",
    )
    .await;
    assert_eq!(status, 200, "{html}");
    let completed = shop.session_now(id);
    assert_eq!(completed["amount_total"], 900);
    assert_eq!(completed["discounts"][0]["coupon"], "PAGE");
}

#[tokio::test]
async fn a_code_for_one_customer_is_refused_at_a_checkout_for_anyone_else() {
    let shop = Shop::new().await;
    shop.coupon("id=MINE&percent_off=10&duration=forever").await;
    let owner = shop.customer(true).await;
    ok(shop
        .post(
            "/v1/promotion_codes",
            &format!("promotion[type]=coupon&promotion[coupon]=MINE&code=MINE&customer={owner}"),
        )
        .await);
    for customer in [None, Some(shop.customer(true).await)] {
        let session = shop
            .session(customer.as_deref(), "allow_promotion_codes=true")
            .await;
        let id = session["id"].as_str().unwrap();
        let error = shop
            .fake
            .complete_checkout_with_code(id, "MINE")
            .await
            .unwrap_err();
        assert!(error.to_string().contains("this customer"), "{error}");
        assert_eq!(shop.session_now(id)["status"], "open");
    }
    let session = shop
        .session(Some(&owner), "allow_promotion_codes=true")
        .await;
    let id = session["id"].as_str().unwrap();
    shop.fake
        .complete_checkout_with_code(id, "MINE")
        .await
        .unwrap();
    assert_eq!(shop.session_now(id)["amount_total"], 900);
}
