//! Rewards against the fake Stripe: a reward on a checkout, on a direct subscription and on
//! a plan change; a reward for a live subscription (`POST /v1/customers/{id}/rewards`); a
//! promotion code typed with the attach or at checkout; what invoices, the customer view and
//! the timeline show; bad input; idempotency.

use fake_stripe::Delivery;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use stripe_product::promotion_code::{
    CreatePromotionCode, CreatePromotionCodePromotion, CreatePromotionCodePromotionType,
};

use crate::stripe_side::World;
use crate::stripe_side::settle;

fn attach_body(customer: &str, plan: &str, extra: Value) -> Value {
    let mut body = json!({"customer_id": customer, "plan_id": plan,
                          "success_url": "https://app.test/ok", "cancel_url": "https://app.test/no"});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

/// Posts an attach and runs its job; returns the attach as it stands then.
pub(crate) async fn attach(w: &World, customer: &str, plan: &str, extra: Value) -> Value {
    let body = attach_body(customer, plan, extra);
    let (status, answer) = w.app.api(Method::POST, "/v1/attach", Some(body)).await;
    assert!(status.is_success(), "{status}: {answer}");
    settle(w).await;
    w.attach_state(answer["id"].as_str().unwrap()).await
}

/// A paying customer holding `plan` through a direct subscription; its id.
pub(crate) async fn subscribed(w: &World, customer: &str, plan: &str) -> String {
    w.paying_customer(customer).await;
    let done = attach(w, customer, plan, json!({})).await;
    assert_eq!(done["state"], "active", "{done}");
    done["stripe_subscription_id"].as_str().unwrap().to_owned()
}

pub(crate) async fn give(w: &World, customer: &str, body: Value) -> (StatusCode, Value) {
    let path = format!("/v1/customers/{customer}/rewards");
    w.app.api(Method::POST, &path, Some(body)).await
}

async fn grant_state(w: &World, customer: &str, id: &str) -> Value {
    let path = format!("/v1/customers/{customer}/rewards/{id}");
    let (status, grant) = w.app.api(Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{grant}");
    grant
}

async fn invoice_detail(w: &World, customer: &str, invoice: &str) -> Value {
    let path = format!("/v1/customers/{customer}/invoices/{invoice}");
    let (status, detail) = w.app.api(Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    detail
}

async fn timeline(w: &World, customer: &str) -> Vec<Value> {
    let path = format!("/v1/customers/{customer}/timeline?limit=100");
    let (status, page) = w.app.api(Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    page["data"].as_array().unwrap().clone()
}

fn kinds<'a>(entries: &'a [Value], kind: &str) -> Vec<&'a Value> {
    entries.iter().filter(|e| e["kind"] == kind).collect()
}

fn stripe_subscription(w: &World, id: &str) -> Value {
    w.stripe
        .subscriptions()
        .into_iter()
        .find(|s| s["id"] == id)
        .unwrap()
}

fn coupons_for(w: &World, reward: &str) -> Vec<Value> {
    w.stripe
        .coupons()
        .into_iter()
        .filter(|c| c["metadata"]["reward_id"] == reward)
        .collect()
}

#[tokio::test]
async fn a_reward_on_checkout_is_on_the_first_invoice_and_in_the_view() {
    let w = World::new().await;
    w.app.create_customer(json!({"id": "u_rc1"})).await;

    let pending = attach(&w, "u_rc1", "pro", json!({"reward": "welcome"})).await;
    assert_eq!(pending["state"], "checkout_required", "{pending}");
    assert_eq!(pending["reward"], "welcome");
    assert_eq!(pending["promotion_code"], Value::Null);
    // The reward's coupon was made for the checkout, in the catalog's terms.
    let coupons = coupons_for(&w, "welcome");
    assert_eq!(coupons.len(), 1, "{coupons:?}");
    let coupon = &coupons[0];
    assert_eq!(coupon["percent_off"], 20.0);
    assert_eq!(coupon["duration"], "once");
    assert_eq!(coupon["name"], "Welcome: 20% off");
    let keys = w.calls("POST", "/v1/coupons");
    assert!(
        keys.iter().all(|k| k
            .as_deref()
            .is_some_and(|k| k.starts_with("rc-coupon-welcome-"))),
        "{keys:?}"
    );
    let session = w.stripe.checkout_sessions().into_iter().next().unwrap();
    assert_eq!(session["discounts"][0]["coupon"], coupon["id"]);
    assert_eq!(session["amount_total"], 1600, "{session}");

    w.stripe
        .complete_checkout(session["id"].as_str().unwrap())
        .await
        .unwrap();
    settle(&w).await;

    let view = w.customer("u_rc1").await;
    let discounts = view["discounts"].as_array().unwrap();
    assert_eq!(discounts.len(), 1, "{view}");
    let d = &discounts[0];
    assert_eq!(d["reward_id"], "welcome");
    assert_eq!(d["coupon_id"], coupon["id"]);
    assert_eq!(d["percent_off"], 20.0);
    assert_eq!(d["amount_off"], Value::Null);
    assert_eq!(d["duration"], "once");
    assert_eq!(d["plan_id"], "pro");
    assert_eq!(
        d["subscription_id"],
        view["products"][0]["stripe_subscription_id"]
    );
    assert!(d["id"].as_str().unwrap().starts_with("di_"), "{d}");

    let invoice = &view["invoices"][0];
    assert_eq!(invoice["status"], "paid");
    assert_eq!(invoice["subtotal"], 2000);
    assert_eq!(invoice["total_discount"], 400);
    assert_eq!(invoice["total"], 1600);
    let detail = invoice_detail(&w, "u_rc1", invoice["stripe_id"].as_str().unwrap()).await;
    assert_eq!(
        detail["discounts"],
        json!([{"discount_id": d["id"], "amount": 400, "coupon_id": coupon["id"],
                "reward_id": "welcome"}])
    );
    assert_eq!(detail["lines"][0]["discount"], 400, "{detail}");

    let entries = timeline(&w, "u_rc1").await;
    let applied = kinds(&entries, "reward.applied");
    assert_eq!(applied.len(), 1, "{entries:#?}");
    assert_eq!(applied[0]["reward_id"], "welcome");
    assert_eq!(applied[0]["discount_id"], d["id"]);
    assert!(applied[0]["source"].as_str().unwrap().starts_with("evt_"));

    // A second customer's checkout with the same reward uses the same coupon.
    w.app.create_customer(json!({"id": "u_rc1b"})).await;
    let pending = attach(&w, "u_rc1b", "pro", json!({"reward": "welcome"})).await;
    assert_eq!(pending["state"], "checkout_required");
    assert_eq!(coupons_for(&w, "welcome").len(), 1);
}

#[tokio::test]
async fn a_reward_for_a_live_subscription_discounts_its_next_invoice_once() {
    let w = World::new().await;
    let sub = subscribed(&w, "u_rl1", "pro").await;

    let body = json!({"reward": "loyalty", "idempotency_key": "loyal-1"});
    let (status, answer) = give(&w, "u_rl1", body.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["state"], "pending");
    assert_eq!(answer["duplicate"], false);
    assert_eq!(answer["reward_id"], "loyalty");
    assert_eq!(answer["plan_id"], "pro");
    assert_eq!(answer["stripe_subscription_id"], sub.as_str());
    settle(&w).await;
    let id = answer["id"].as_str().unwrap();
    let done = grant_state(&w, "u_rl1", id).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["outcome"], "applied");
    assert_eq!(done["requested_by"], "api");
    let discount = done["discount_id"].as_str().unwrap().to_owned();
    assert_eq!(
        stripe_subscription(&w, &sub)["discounts"],
        json!([discount])
    );
    assert_eq!(
        w.calls("POST", &format!("/v1/subscriptions/{sub}")),
        vec![Some(format!("rc-reward-{id}-apply"))]
    );

    let view = w.customer("u_rl1").await;
    let d = &view["discounts"][0];
    assert_eq!(d["id"], discount.as_str(), "{view}");
    assert_eq!(d["reward_id"], "loyalty");
    assert_eq!(d["amount_off"], 500);
    assert_eq!(d["currency"], "usd");
    assert_eq!(d["duration"], "forever");
    assert_eq!(d["plan_id"], "pro");
    // Our job recorded it; Stripe's webhook about it added nothing.
    let entries = timeline(&w, "u_rl1").await;
    let applied = kinds(&entries, "reward.applied");
    assert_eq!(applied.len(), 1, "{entries:#?}");
    assert_eq!(applied[0]["source"], "api");
    assert_eq!(applied[0]["reward_id"], "loyalty");

    // The same key answers the first grant; asking again without one changes nothing.
    let (status, again) = give(&w, "u_rl1", body).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["id"], id);
    let (status, other) = give(&w, "u_rl1", json!({"reward": "loyalty"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{other}");
    settle(&w).await;
    let other = grant_state(&w, "u_rl1", other["id"].as_str().unwrap()).await;
    assert_eq!(other["outcome"], "unchanged", "{other}");
    assert_eq!(other["discount_id"], discount.as_str());
    assert_eq!(
        w.calls("POST", &format!("/v1/subscriptions/{sub}")).len(),
        1
    );
    assert_eq!(coupons_for(&w, "loyalty").len(), 1);

    // The renewal's invoice takes it off.
    // A renewal comes a period later, not within the second of the invoice before it.
    w.stripe.advance_clock(std::time::Duration::from_secs(60));
    let renewal = w.stripe.renew(&sub).await.unwrap();
    w.stripe.charge_invoice(&renewal).await.unwrap();
    settle(&w).await;
    let detail = invoice_detail(&w, "u_rl1", &renewal).await;
    assert_eq!(detail["status"], "paid", "{detail}");
    assert_eq!(detail["subtotal"], 2000);
    assert_eq!(detail["total_discount"], 500);
    assert_eq!(detail["total"], 1500);
    assert_eq!(detail["discounts"][0]["reward_id"], "loyalty");
    assert_eq!(detail["discounts"][0]["discount_id"], discount.as_str());
    // The first invoice had none.
    let view = w.customer("u_rl1").await;
    let first = view["invoices"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(first["total_discount"], 0, "{first}");
    assert_eq!(first["total"], 2000);
}

#[tokio::test]
async fn a_once_reward_ends_after_its_invoice_and_leaves_the_timeline_a_removal() {
    let w = World::new().await;
    let sub = subscribed(&w, "u_ro1", "pro").await;
    let (status, answer) = give(&w, "u_ro1", json!({"reward": "welcome"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    settle(&w).await;

    // A renewal comes a period later, not within the second of the invoice before it.
    w.stripe.advance_clock(std::time::Duration::from_secs(60));
    let first = w.stripe.renew(&sub).await.unwrap();
    w.stripe.charge_invoice(&first).await.unwrap();
    settle(&w).await;
    assert_eq!(invoice_detail(&w, "u_ro1", &first).await["total"], 1600);
    // The next renewal, a period later, removes the used discount and bills in full.
    w.stripe.advance_clock(std::time::Duration::from_secs(60));
    let second = w.stripe.renew(&sub).await.unwrap();
    w.stripe.charge_invoice(&second).await.unwrap();
    settle(&w).await;
    assert_eq!(invoice_detail(&w, "u_ro1", &second).await["total"], 2000);
    let view = w.customer("u_ro1").await;
    assert_eq!(view["discounts"], json!([]), "{view}");
    let entries = timeline(&w, "u_ro1").await;
    let removed = kinds(&entries, "reward.removed");
    assert_eq!(removed.len(), 1, "{entries:#?}");
    assert_eq!(removed[0]["reward_id"], "welcome");
    assert!(removed[0]["source"].as_str().unwrap().starts_with("evt_"));
}

#[tokio::test]
async fn a_typed_promotion_code_goes_on_a_direct_subscription() {
    let w = World::new().await;
    let coupon = w
        .stripe
        .create_coupon_in_dashboard(&[
            ("id", "HALF3"),
            ("percent_off", "50"),
            ("duration", "repeating"),
            ("duration_in_months", "3"),
            ("name", "Half off"),
        ])
        .await
        .unwrap();
    let promo = w
        .stripe
        .create_promotion_code_in_dashboard(&coupon, "HALFOFF")
        .await
        .unwrap();
    settle(&w).await;
    w.paying_customer("u_pc1").await;

    // Codes are matched regardless of case, as Stripe does.
    let done = attach(&w, "u_pc1", "pro", json!({"promotion_code": "halfoff"})).await;
    assert_eq!(done["state"], "active", "{done}");
    assert_eq!(done["promotion_code"], "halfoff");
    assert_eq!(done["reward"], Value::Null);
    let sub = done["stripe_subscription_id"].as_str().unwrap();
    let discount = stripe_subscription(&w, sub)["discounts"][0].clone();
    assert!(discount.is_string(), "{discount}");
    let listed = w
        .stripe
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path == "/v1/promotion_codes")
        .count();
    assert_eq!(listed, 1);

    let view = w.customer("u_pc1").await;
    let d = &view["discounts"][0];
    assert_eq!(d["id"], discount, "{view}");
    assert_eq!(d["promotion_code_id"], promo.as_str());
    assert_eq!(d["coupon_id"], "HALF3");
    assert_eq!(d["reward_id"], Value::Null);
    assert_eq!(d["name"], "Half off");
    assert_eq!(d["percent_off"], 50.0);
    assert_eq!(d["duration"], "repeating");
    assert_eq!(d["duration_in_months"], 3);
    assert!(d["end"].is_string(), "a repeating discount ends: {d}");
    let invoice = &view["invoices"][0];
    assert_eq!(invoice["total"], 1000, "{invoice}");
    assert_eq!(invoice["total_discount"], 1000);
}

#[tokio::test]
async fn a_checkout_can_take_a_typed_code_whose_coupon_is_read_from_stripe() {
    let w = World::new().await;
    // Made while webhooks were lost: the daemon learns of the coupon from its discount.
    w.stripe.set_delivery(Delivery::Drop);
    let coupon = w
        .stripe
        .create_coupon_in_dashboard(&[
            ("id", "FIVE"),
            ("amount_off", "500"),
            ("currency", "usd"),
            ("duration", "forever"),
        ])
        .await
        .unwrap();
    w.stripe
        .create_promotion_code_in_dashboard(&coupon, "FIVEOFF")
        .await
        .unwrap();
    w.stripe.set_delivery(Delivery::Deliver);
    w.app.create_customer(json!({"id": "u_tc1"})).await;

    let pending = attach(&w, "u_tc1", "pro", json!({"allow_promotion_codes": true})).await;
    assert_eq!(pending["state"], "checkout_required", "{pending}");
    assert_eq!(pending["allow_promotion_codes"], true);
    let session = w.stripe.checkout_sessions().into_iter().next().unwrap();
    assert_eq!(session["allow_promotion_codes"], true);
    w.stripe
        .complete_checkout_with_code(session["id"].as_str().unwrap(), "FIVEOFF")
        .await
        .unwrap();
    settle(&w).await;
    assert_eq!(w.calls("GET", "/v1/coupons/FIVE").len(), 1);

    let view = w.customer("u_tc1").await;
    let d = &view["discounts"][0];
    assert_eq!(d["coupon_id"], "FIVE", "{view}");
    assert_eq!(d["amount_off"], 500);
    assert_eq!(d["currency"], "usd");
    assert_eq!(d["duration"], "forever");
    assert_eq!(view["invoices"][0]["total"], 1500);
}

#[tokio::test]
async fn an_upgrade_with_a_reward_keeps_the_discounts_the_subscription_has() {
    let w = World::new().await;
    let sub = subscribed(&w, "u_up1", "pro").await;
    let (status, _) = give(&w, "u_up1", json!({"reward": "loyalty"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    settle(&w).await;

    let done = attach(&w, "u_up1", "business", json!({"reward": "launch"})).await;
    assert_eq!(done["state"], "active", "{done}");
    assert_eq!(done["stripe_subscription_id"], sub.as_str());
    let discounts = stripe_subscription(&w, &sub)["discounts"].clone();
    assert_eq!(discounts.as_array().unwrap().len(), 2, "{discounts}");
    let view = w.customer("u_up1").await;
    let rewards: Vec<&Value> = view["discounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["reward_id"])
        .collect();
    assert_eq!(rewards, [&json!("loyalty"), &json!("launch")], "{view}");
    assert!(
        view["discounts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["plan_id"] == "business"),
        "{view}"
    );
}

#[tokio::test]
async fn unknown_rewards_and_codes_are_refused_naming_the_field_and_nothing_is_made() {
    let w = World::new().await;
    let sub = subscribed(&w, "u_bad", "pro").await;
    w.app.create_customer(json!({"id": "u_plain"})).await;
    let other = w
        .stripe
        .create_customer_in_dashboard(Some("Someone else"), None, &[])
        .await
        .unwrap();
    let coupon = w
        .stripe
        .create_coupon_in_dashboard(&[("percent_off", "10"), ("duration", "once")])
        .await
        .unwrap();
    w.stripe
        .create_promotion_code_in_dashboard(&coupon, "VALID10")
        .await
        .unwrap();
    // A code only another customer may redeem.
    let mut promotion = CreatePromotionCodePromotion::new(CreatePromotionCodePromotionType::Coupon);
    promotion.coupon = Some(coupon.clone());
    CreatePromotionCode::new(promotion)
        .code("NOTYOURS")
        .customer(other.as_str())
        .send(&crate::fake_stripe::client(&w.stripe))
        .await
        .unwrap();
    settle(&w).await;
    let attaches_before = w.app.count("SELECT count(*) FROM attaches").await;
    let requests_before = w.stripe.requests().len();

    let refusals = [
        (
            attach_body("u_plain", "pro", json!({"reward": "nope"})),
            StatusCode::NOT_FOUND,
            "reward_not_found",
            "reward nope",
        ),
        (
            attach_body("u_plain", "pro", json!({"promotion_code": "NOPE"})),
            StatusCode::NOT_FOUND,
            "promotion_code_not_found",
            "promotion_code NOPE",
        ),
        (
            attach_body("u_plain", "pro", json!({"promotion_code": "NOTYOURS"})),
            StatusCode::BAD_REQUEST,
            "promotion_code_not_redeemable",
            "promotion_code NOTYOURS",
        ),
        (
            attach_body(
                "u_plain",
                "pro",
                json!({"reward": "welcome", "promotion_code": "VALID10"}),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "`promotion_code`",
        ),
        (
            attach_body(
                "u_plain",
                "pro",
                json!({"reward": "welcome", "allow_promotion_codes": true}),
            ),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "`allow_promotion_codes`",
        ),
        (
            attach_body("u_plain", "priority-support", json!({"promotion_code": ""})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "`promotion_code`",
        ),
        (
            attach_body("u_plain", "free", json!({"reward": "welcome"})),
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "`reward`",
        ),
        (
            attach_body("u_nobody", "pro", json!({"reward": "welcome"})),
            StatusCode::NOT_FOUND,
            "customer_not_found",
            "u_nobody",
        ),
    ];
    for (body, status, code, names) in refusals {
        let (got, answer) = w
            .app
            .api(Method::POST, "/v1/attach", Some(body.clone()))
            .await;
        assert_eq!(got, status, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(names), "{message} should name {names}");
    }
    assert_eq!(
        w.app.count("SELECT count(*) FROM attaches").await,
        attaches_before
    );

    let grants = [
        (
            "u_bad",
            json!({"reward": "nope"}),
            StatusCode::NOT_FOUND,
            "reward_not_found",
        ),
        (
            "u_bad",
            json!({"promotion_code": "NOPE"}),
            StatusCode::NOT_FOUND,
            "promotion_code_not_found",
        ),
        (
            "u_bad",
            json!({}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "u_bad",
            json!({"reward": "welcome", "promotion_code": "VALID10"}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "u_bad",
            json!({"promotion_code": "NOTYOURS"}),
            StatusCode::BAD_REQUEST,
            "promotion_code_not_redeemable",
        ),
        (
            "u_bad",
            json!({"reward": "welcome", "plan_id": "business"}),
            StatusCode::NOT_FOUND,
            "plan_not_held",
        ),
        (
            "u_bad",
            json!({"reward": "welcome", "plan_id": "nope"}),
            StatusCode::NOT_FOUND,
            "plan_not_found",
        ),
        (
            "u_bad",
            json!({"reward": "welcome", "rewad": 1}),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "u_plain",
            json!({"reward": "welcome"}),
            StatusCode::CONFLICT,
            "no_subscription",
        ),
        (
            "u_plain",
            json!({"reward": "welcome", "plan_id": "free"}),
            StatusCode::CONFLICT,
            "no_subscription",
        ),
        (
            "u_nobody",
            json!({"reward": "welcome"}),
            StatusCode::NOT_FOUND,
            "customer_not_found",
        ),
    ];
    for (customer, body, status, code) in grants {
        let (got, answer) = give(&w, customer, body.clone()).await;
        assert_eq!(got, status, "{customer} {body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{customer} {body}: {answer}");
    }
    assert_eq!(w.app.count("SELECT count(*) FROM reward_grants").await, 0);
    let (status, answer) = w
        .app
        .api(Method::GET, "/v1/customers/u_bad/rewards/rwd_nope", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["error"]["code"], "reward_grant_not_found");

    // Nothing was made in Stripe: only the codes were looked up.
    let made: Vec<_> = w.stripe.requests()[requests_before..]
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| r.path.clone())
        .collect();
    assert!(made.is_empty(), "{made:?}");
    assert!(stripe_subscription(&w, &sub)["discounts"] == json!([]));
}

#[tokio::test]
async fn a_grant_stripe_refuses_is_failed_with_its_words() {
    let w = World::new().await;
    let sub = subscribed(&w, "u_rf1", "pro").await;
    let (status, _) = give(&w, "u_rf1", json!({"reward": "loyalty"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    settle(&w).await;
    // A code for the coupon the subscription has a discount from already.
    let coupon = coupons_for(&w, "loyalty")[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    w.stripe
        .create_promotion_code_in_dashboard(&coupon, "LOYAL2")
        .await
        .unwrap();

    let (status, answer) = give(&w, "u_rf1", json!({"promotion_code": "LOYAL2"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["promotion_code"], "LOYAL2");
    settle(&w).await;
    let failed = grant_state(&w, "u_rf1", answer["id"].as_str().unwrap()).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("can only be applied once")),
        "{failed}"
    );
    assert_eq!(
        stripe_subscription(&w, &sub)["discounts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        w.customer("u_rf1").await["discounts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
