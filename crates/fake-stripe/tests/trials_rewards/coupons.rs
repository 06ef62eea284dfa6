//! `/v1/coupons` and `/v1/promotion_codes`: shapes, Stripe's refusals, events, and the
//! dashboard helpers.

use serde_json::{Value, json};

use crate::helpers::{Shop, ok, raw, refused};

#[tokio::test]
async fn coupons_are_created_retrieved_and_deleted() {
    let shop = Shop::new().await;
    let skip = shop.fake.events().len();
    let coupon = ok(shop
        .post(
            "/v1/coupons",
            "id=SPRING&percent_off=25.5&duration=repeating&duration_in_months=3\
             &name=Spring&metadata[campaign]=s27",
        )
        .await);
    assert_eq!(coupon["id"], "SPRING");
    assert_eq!(coupon["object"], "coupon");
    assert_eq!(coupon["percent_off"], 25.5);
    assert_eq!(coupon["amount_off"], Value::Null);
    assert_eq!(coupon["currency"], Value::Null);
    assert_eq!(coupon["duration"], "repeating");
    assert_eq!(coupon["duration_in_months"], 3);
    assert_eq!(coupon["name"], "Spring");
    assert_eq!(coupon["metadata"], json!({"campaign": "s27"}));
    assert_eq!(coupon["times_redeemed"], 0);
    assert_eq!(coupon["valid"], true);
    assert_eq!(coupon["created"], shop.fake.now());

    let generated = ok(shop
        .post(
            "/v1/coupons",
            "amount_off=500&currency=USD&duration=forever",
        )
        .await);
    let generated_id = generated["id"].as_str().unwrap();
    assert_eq!(generated_id.len(), 8, "an 8-character code: {generated_id}");
    assert_eq!(generated["amount_off"], 500);
    assert_eq!(generated["currency"], "usd");
    assert_eq!(generated["duration_in_months"], Value::Null);
    let once = ok(shop.post("/v1/coupons", "percent_off=10").await);
    assert_eq!(once["duration"], "once", "Stripe's default");

    assert_eq!(
        ok(raw(&shop.fake, "GET", "/v1/coupons/SPRING", "").await),
        coupon
    );
    let updated = ok(shop.post("/v1/coupons/SPRING", "name=Spring+sale").await);
    assert_eq!(updated["name"], "Spring sale");
    let (status, deleted) = raw(&shop.fake, "DELETE", "/v1/coupons/SPRING", "").await;
    assert_eq!(status, 200);
    assert_eq!(
        deleted,
        json!({"id": "SPRING", "object": "coupon", "deleted": true})
    );
    let error = refused(raw(&shop.fake, "GET", "/v1/coupons/SPRING", "").await, 404);
    assert_eq!(error["code"], "resource_missing");
    assert_eq!(error["message"], "No such coupon: 'SPRING'");

    assert_eq!(
        shop.types_since(skip),
        [
            "coupon.created",
            "coupon.created",
            "coupon.created",
            "coupon.updated",
            "coupon.deleted"
        ]
    );
    let events = shop.events_since(skip);
    assert_eq!(
        events[3]["data"]["previous_attributes"],
        json!({"name": "Spring"})
    );
    assert_eq!(events[4]["data"]["object"]["name"], "Spring sale");
}

#[tokio::test]
async fn coupons_are_refused_as_stripe_refuses_them() {
    let shop = Shop::new().await;
    shop.coupon("id=TAKEN&percent_off=5").await;
    let skip = shop.fake.events().len();
    let coupons = shop.fake.coupons().len();
    for (form, param, code) in [
        (
            "percent_off=10&amount_off=100&currency=usd",
            "amount_off",
            None,
        ),
        ("duration=once", "", None),
        ("amount_off=100", "currency", None),
        ("percent_off=0", "percent_off", None),
        ("percent_off=100.5", "percent_off", None),
        ("percent_off=ten", "percent_off", None),
        ("amount_off=0&currency=usd", "amount_off", None),
        ("percent_off=10&duration=weekly", "duration", None),
        (
            "percent_off=10&duration=repeating",
            "duration_in_months",
            Some("parameter_missing"),
        ),
        (
            "percent_off=10&duration=once&duration_in_months=2",
            "duration_in_months",
            None,
        ),
        (
            "id=TAKEN&percent_off=10",
            "id",
            Some("resource_already_exists"),
        ),
    ] {
        let error = refused(shop.post("/v1/coupons", form).await, 400);
        assert_eq!(error["type"], "invalid_request_error", "{form}");
        let expected = if param.is_empty() {
            Value::Null
        } else {
            json!(param)
        };
        assert_eq!(error["param"], expected, "{form}: {error}");
        assert_eq!(error["code"], json!(code), "{form}: {error}");
    }
    let error = refused(
        shop.post("/v1/coupons", "id=TAKEN&percent_off=10").await,
        400,
    );
    assert_eq!(error["message"], "Coupon already exists.");
    assert_eq!(shop.fake.coupons().len(), coupons, "nothing created");
    assert_eq!(shop.fake.events().len(), skip, "no events");
    // A deleted coupon's id stays taken.
    raw(&shop.fake, "DELETE", "/v1/coupons/TAKEN", "").await;
    refused(
        shop.post("/v1/coupons", "id=TAKEN&percent_off=10").await,
        400,
    );
}

#[tokio::test]
async fn promotion_codes_name_their_coupon_under_promotion() {
    let shop = Shop::new().await;
    let coupon = shop
        .coupon("id=WELCOME&percent_off=20&duration=forever")
        .await;
    let skip = shop.fake.events().len();
    let code = ok(shop
        .post(
            "/v1/promotion_codes",
            &format!(
                "promotion[type]=coupon&promotion[coupon]={coupon}&code=Hello-20\
                 &max_redemptions=5&metadata[source]=blog"
            ),
        )
        .await);
    let id = code["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("promo_"), "{id}");
    assert_eq!(code["object"], "promotion_code");
    assert_eq!(code["code"], "Hello-20");
    assert_eq!(code["active"], true);
    assert_eq!(
        code["promotion"],
        json!({"coupon": "WELCOME", "type": "coupon"})
    );
    assert_eq!(code["max_redemptions"], 5);
    assert_eq!(code["times_redeemed"], 0);
    assert_eq!(code["customer"], Value::Null);
    assert_eq!(code["restrictions"]["first_time_transaction"], false);
    assert_eq!(code["metadata"], json!({"source": "blog"}));
    assert!(
        code.get("coupon").is_none(),
        "no top-level coupon since clover"
    );

    // Listing by code ignores case; retrieving by id.
    let list = ok(raw(
        &shop.fake,
        "GET",
        "/v1/promotion_codes",
        "code=HELLO-20&active=true",
    )
    .await);
    assert_eq!(list["object"], "list");
    assert_eq!(list["data"], json!([code.clone()]));
    let path = format!("/v1/promotion_codes/{id}");
    assert_eq!(ok(raw(&shop.fake, "GET", &path, "").await), code);
    let generated = ok(shop
        .post(
            "/v1/promotion_codes",
            &format!("promotion[type]=coupon&promotion[coupon]={coupon}"),
        )
        .await);
    assert_eq!(generated["code"].as_str().unwrap().len(), 8);

    // Deactivated: not listed as active, and its code is free again.
    let off = ok(shop.post(&path, "active=false").await);
    assert_eq!(off["active"], false);
    let list = ok(raw(
        &shop.fake,
        "GET",
        "/v1/promotion_codes",
        "code=hello-20&active=true",
    )
    .await);
    assert_eq!(list["data"], json!([]));
    ok(shop
        .post(
            "/v1/promotion_codes",
            &format!("promotion[type]=coupon&promotion[coupon]={coupon}&code=HELLO-20"),
        )
        .await);
    let error = refused(shop.post(&path, "active=true").await, 400);
    assert_eq!(error["code"], "resource_already_exists");

    assert_eq!(
        shop.types_since(skip),
        [
            "promotion_code.created",
            "promotion_code.created",
            "promotion_code.updated",
            "promotion_code.created"
        ]
    );
    let updated = &shop.events_since(skip)[2]["data"];
    assert_eq!(updated["previous_attributes"], json!({"active": true}));
}

#[tokio::test]
async fn promotion_codes_are_refused_as_stripe_refuses_them() {
    let shop = Shop::new().await;
    let coupon = shop.coupon("id=C10&percent_off=10").await;
    ok(shop
        .post(
            "/v1/promotion_codes",
            "promotion[type]=coupon&promotion[coupon]=C10&code=TAKEN",
        )
        .await);
    let codes = shop.fake.promotion_codes().len();
    for (form, param, code) in [
        (
            format!("coupon={coupon}&code=OLD"),
            "coupon",
            Some("parameter_unknown"),
        ),
        (
            format!("promotion[coupon]={coupon}"),
            "promotion[type]",
            Some("parameter_missing"),
        ),
        (
            "promotion[type]=coupon".to_owned(),
            "promotion[coupon]",
            Some("parameter_missing"),
        ),
        (
            "promotion[type]=coupon&promotion[coupon]=NOPE".to_owned(),
            "promotion[coupon]",
            Some("resource_missing"),
        ),
        (
            format!("promotion[type]=gift&promotion[coupon]={coupon}"),
            "promotion[type]",
            None,
        ),
        (
            format!("promotion[type]=coupon&promotion[coupon]={coupon}&code=taken"),
            "code",
            Some("resource_already_exists"),
        ),
        (
            format!("promotion[type]=coupon&promotion[coupon]={coupon}&code=no+spaces"),
            "code",
            None,
        ),
        (
            format!("promotion[type]=coupon&promotion[coupon]={coupon}&customer=cus_nope"),
            "customer",
            Some("resource_missing"),
        ),
    ] {
        let error = refused(shop.post("/v1/promotion_codes", &form).await, 400);
        assert_eq!(error["param"], param, "{form}: {error}");
        assert_eq!(error["code"], json!(code), "{form}: {error}");
    }
    assert_eq!(shop.fake.promotion_codes().len(), codes, "nothing created");
    let error = refused(
        raw(&shop.fake, "GET", "/v1/promotion_codes/promo_nope", "").await,
        404,
    );
    assert_eq!(error["message"], "No such promotion_code: 'promo_nope'");
}

#[tokio::test]
async fn the_dashboard_makes_coupons_and_promotion_codes() {
    let shop = Shop::new().await;
    let skip = shop.fake.events().len();
    let coupon = shop
        .fake
        .create_coupon_in_dashboard(&[
            ("id", "VIP"),
            ("percent_off", "50"),
            ("duration", "forever"),
        ])
        .await
        .unwrap();
    assert_eq!(coupon, "VIP");
    let code = shop
        .fake
        .create_promotion_code_in_dashboard("VIP", "VIP50")
        .await
        .unwrap();
    let codes = shop.fake.promotion_codes();
    assert_eq!(codes.len(), 1);
    assert_eq!(codes[0]["id"], code.as_str());
    assert_eq!(codes[0]["code"], "VIP50");
    assert_eq!(codes[0]["promotion"]["coupon"], "VIP");
    assert_eq!(
        shop.types_since(skip),
        ["coupon.created", "promotion_code.created"]
    );
    for event in shop.events_since(skip) {
        assert!(
            event["request"]["id"].is_string(),
            "the dashboard's request"
        );
    }
    assert!(
        shop.fake
            .create_coupon_in_dashboard(&[("id", "VIP"), ("percent_off", "10")])
            .await
            .is_err(),
        "refused as the API refuses"
    );
    assert!(
        shop.fake
            .create_promotion_code_in_dashboard("NOPE", "X")
            .await
            .is_err()
    );
}
