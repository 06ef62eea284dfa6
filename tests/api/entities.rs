//! Entities (issue 17): a customer's teams, each using a seat of the customer's, holding
//! plans of its own (their own subscriptions, mapped back by `metadata.entity_id` in any
//! delivery order) with balances apart from the customer's; without a grant of its own, an
//! entity's check and track use the customer's balance.

use std::collections::HashSet;

use bytes::Bytes;
use fake_stripe::Delivery;
use http_body_util::Full;
use hyper::{Method, Request, StatusCode};
use serde_json::{Value, json};

use crate::console::ConsoleClient;
use crate::helpers::*;
use crate::stripe_side::{STRIPE_KEY, World, plan_ids};

impl World {
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.app.api(Method::POST, path, Some(body)).await
    }

    /// Creates entity `id` of `customer`, using a seat.
    async fn entity(&self, customer: &str, id: &str) -> Value {
        let body = json!({"id": id, "name": format!("Team {id}"), "feature_id": "seats"});
        let (status, answer) = self
            .post(&format!("/v1/customers/{customer}/entities"), body)
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        answer
    }

    /// A paying customer holding `pro` (5 seats, 1,000 messages) with its webhooks applied.
    async fn pro_customer(&self, id: &str) {
        self.paying_customer(id).await;
        let attach = self.attach(id, "pro").await;
        self.drain().await;
        let done = self.attach_state(attach["id"].as_str().unwrap()).await;
        assert_eq!(done["state"], "active", "{done}");
    }
}

/// A balance of the view (the customer's or an entity's), by feature.
fn balance<'a>(holder: &'a Value, feature: &str) -> &'a Value {
    holder["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["feature_id"] == feature)
        .unwrap_or_else(|| panic!("no {feature} balance in {holder}"))
}

fn entity<'a>(customer: &'a Value, id: &str) -> &'a Value {
    customer["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id)
        .unwrap_or_else(|| panic!("no entity {id} in {customer}"))
}

fn error_code(answer: &Value) -> &str {
    answer["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn an_entity_uses_a_seat_and_frees_it_when_deleted() {
    let w = World::new().await;
    w.pro_customer("u_ent").await;

    let created = w.entity("u_ent", "team-a").await;
    assert_eq!(created["customer_id"], "u_ent");
    assert_eq!(created["feature_id"], "seats");
    assert_eq!(created["duplicate"], false);
    assert_eq!(created["products"], json!([]));
    assert_eq!(created["balances"], json!([]));
    let c = w.customer("u_ent").await;
    let seats = balance(&c, "seats");
    assert_eq!((&seats["used"], &seats["balance"]), (&json!(1), &json!(4)));
    assert_eq!(entity(&c, "team-a")["name"], "Team team-a");

    // The same body again is the same entity; another body for the id is refused.
    let again = json!({"id": "team-a", "name": "Team team-a", "feature_id": "seats"});
    let (status, answer) = w.post("/v1/customers/u_ent/entities", again).await;
    assert_eq!(
        (status, &answer["duplicate"]),
        (StatusCode::OK, &json!(true))
    );
    let renamed = json!({"id": "team-a", "name": "Other", "feature_id": "seats"});
    let (status, answer) = w.post("/v1/customers/u_ent/entities", renamed).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::CONFLICT, "entity_exists")
    );
    assert_eq!(balance(&w.customer("u_ent").await, "seats")["used"], 1);

    // No seat left: refused, and nothing is created.
    let set = json!({"customer_id": "u_ent", "feature_id": "seats", "op": "set", "amount": 0});
    assert_eq!(w.post("/v1/balances", set).await.0, StatusCode::OK);
    let team_b = json!({"id": "team-b", "feature_id": "seats"});
    let (status, answer) = w.post("/v1/customers/u_ent/entities", team_b.clone()).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::CONFLICT, "feature_exhausted"),
        "{answer}"
    );
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("no seats left"), "{message}");

    // Deleting frees the seat; nothing was left in Stripe.
    let (status, deleted) = w
        .app
        .api(Method::DELETE, "/v1/customers/u_ent/entities/team-a", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(deleted["deleted"], true);
    assert_eq!(deleted["stripe_subscriptions"], json!([]));
    let seats = balance(&w.customer("u_ent").await, "seats").clone();
    assert_eq!((&seats["used"], &seats["balance"]), (&json!(0), &json!(1)));
    let (status, answer) = w.post("/v1/customers/u_ent/entities", team_b).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let (status, answer) = w
        .app
        .api(Method::DELETE, "/v1/customers/u_ent/entities/team-a", None)
        .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::NOT_FOUND, "entity_not_found")
    );

    // Listed under their customer only: never as customers.
    let (status, list) = w
        .app
        .api(Method::GET, "/v1/customers/u_ent/entities", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["team-b"]);
    let (status, one) = w
        .app
        .api(Method::GET, "/v1/customers/u_ent/entities/team-b", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(
        (&one["id"], &one["customer_id"]),
        (&json!("team-b"), &json!("u_ent"))
    );
    let (_, customers) = w.app.api(Method::GET, "/v1/customers", None).await;
    assert_eq!(
        customers["data"].as_array().unwrap().len(),
        1,
        "{customers}"
    );
    let (_, timeline) = w
        .app
        .api(Method::GET, "/v1/customers/u_ent/timeline", None)
        .await;
    let kinds: Vec<&str> = timeline["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds
            .into_iter()
            .filter(|k| k.starts_with("entity."))
            .collect::<Vec<_>>(),
        ["entity.created", "entity.deleted", "entity.created"],
        "{timeline}"
    );
}

#[tokio::test]
async fn entity_requests_name_what_is_wrong() {
    let app = TestApp::spawn().await;
    app.create_customer(json!({"id": "u_plain"})).await;
    let post = |path: &'static str, body: Value| app.api(Method::POST, path, Some(body));
    let expect = |(status, answer): (StatusCode, Value), want: StatusCode, code: &str| {
        assert_eq!((status, error_code(&answer)), (want, code), "{answer}");
        answer["error"]["message"].as_str().unwrap().to_owned()
    };
    let seats = json!({"id": "t", "feature_id": "seats"});

    let got = post("/v1/customers/nobody/entities", seats.clone()).await;
    expect(got, StatusCode::NOT_FOUND, "customer_not_found");
    let got = post(
        "/v1/customers/u_plain/entities",
        json!({"id": "t", "feature_id": "seatz"}),
    )
    .await;
    expect(got, StatusCode::NOT_FOUND, "feature_not_found");
    for (body, field) in [
        (json!({"feature_id": "seats"}), "id"),
        (json!({"id": "t"}), "feature_id"),
        (json!({"id": "", "feature_id": "seats"}), "`id`"),
        (json!({"id": "a\tb", "feature_id": "seats"}), "`id`"),
        (
            json!({"id": "t", "name": "n".repeat(256), "feature_id": "seats"}),
            "`name`",
        ),
        (
            json!({"id": "t", "feature_id": "priority_support"}),
            "`feature_id`",
        ),
        (
            json!({"id": "t", "feature_id": "seats", "seats": 2}),
            "seats",
        ),
    ] {
        let got = post("/v1/customers/u_plain/entities", body.clone()).await;
        let message = expect(got, StatusCode::BAD_REQUEST, "invalid_request");
        assert!(message.contains(field), "{body}: {message}");
    }
    // The free plan grants no seats.
    let got = post("/v1/customers/u_plain/entities", seats).await;
    let message = expect(got, StatusCode::CONFLICT, "feature_exhausted");
    assert!(message.contains("no plan of theirs grants it"), "{message}");

    let got = app
        .api(Method::GET, "/v1/customers/u_plain/entities/t", None)
        .await;
    expect(got, StatusCode::NOT_FOUND, "entity_not_found");
    let got = app
        .api(Method::DELETE, "/v1/customers/u_plain/entities/t", None)
        .await;
    expect(got, StatusCode::NOT_FOUND, "entity_not_found");
    let got = app
        .api(Method::GET, "/v1/customers/nobody/entities", None)
        .await;
    expect(got, StatusCode::NOT_FOUND, "customer_not_found");
    let got = app
        .api(Method::PUT, "/v1/customers/u_plain/entities", None)
        .await;
    expect(got, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    for path in ["/v1/check", "/v1/track"] {
        let body = json!({"customer_id": "u_plain", "feature_id": "messages", "entity_id": "t"});
        let got = post(path, body).await;
        expect(got, StatusCode::NOT_FOUND, "entity_not_found");
        let body = json!({"customer_id": "u_plain", "feature_id": "messages", "entity_id": ""});
        let message = expect(
            post(path, body).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        );
        assert!(message.contains("`entity_id`"), "{message}");
    }
    // The customer view lists no entities.
    let (_, view) = app.api(Method::GET, "/v1/customers/u_plain", None).await;
    assert_eq!(view["entities"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entity_plan_and_its_usage_are_kept_apart_from_the_customers() {
    let w = World::new().await;
    w.pro_customer("u_team").await;
    w.entity("u_team", "team-a").await;

    let body = json!({"customer_id": "u_team", "entity_id": "team-a", "plan_id": "pro",
                      "success_url": "https://app.test/ok", "cancel_url": "https://app.test/no"});
    let (status, attach) = w.post("/v1/attach", body.clone()).await;
    assert!(status.is_success(), "{attach}");
    assert_eq!(attach["entity_id"], "team-a");
    w.drain().await;
    let done = w.attach_state(attach["id"].as_str().unwrap()).await;
    assert_eq!(
        (&done["state"], &done["customer_id"], &done["entity_id"]),
        (&json!("active"), &json!("u_team"), &json!("team-a")),
        "{done}"
    );
    let entity_sub = done["stripe_subscription_id"].as_str().unwrap().to_owned();
    // Attaching it again is the same plan; so is its own subscription in Stripe.
    let (status, again) = w.post("/v1/attach", body).await;
    assert_eq!(
        (status, &again["duplicate"]),
        (StatusCode::OK, &json!(true))
    );
    let subs = w.stripe.subscriptions();
    assert_eq!(subs.len(), 2, "the customer's and the entity's");
    let sub = subs
        .iter()
        .find(|s| s["id"] == entity_sub.as_str())
        .unwrap();
    assert_eq!(sub["metadata"]["entity_id"], "team-a");
    assert_eq!(sub["metadata"]["customer_id"], "u_team");
    assert_eq!(sub["customer"], subs[0]["customer"], "one Stripe customer");
    assert_eq!(w.stripe.customers().len(), 1);

    // The customer keeps its pro; the entity has a pro of its own, with its own balances.
    let c = w.customer("u_team").await;
    assert_eq!(plan_ids(&c), [("pro".to_owned(), "active".to_owned())]);
    assert_ne!(c["products"][0]["stripe_subscription_id"], entity_sub);
    let team = entity(&c, "team-a");
    assert_eq!(plan_ids(team), [("pro".to_owned(), "active".to_owned())]);
    assert_eq!(team["products"][0]["stripe_subscription_id"], entity_sub);
    assert_eq!(balance(team, "messages")["included"], 1_000);
    assert_eq!(balance(team, "seats")["used"], 0);
    assert_eq!(balance(&c, "seats")["used"], 1, "the entity's own seat");

    // Usage of the entity is the entity's, the customer's the customer's.
    let track = |entity: Option<&str>, value: i64, key: &str| {
        let mut body = json!({"customer_id": "u_team", "feature_id": "messages",
                              "value": value, "idempotency_key": key});
        if let Some(entity) = entity {
            body["entity_id"] = entity.into();
        }
        w.post("/v1/track", body)
    };
    let (status, tracked) = track(Some("team-a"), 40, "e1").await;
    assert_eq!(status, StatusCode::OK, "{tracked}");
    assert_eq!(
        (&tracked["scope"], &tracked["balance"]),
        (&json!("entity"), &json!(960))
    );
    track(None, 3, "c1").await;
    let check = json!({"customer_id": "u_team", "entity_id": "team-a",
                       "feature_id": "messages", "required": 960});
    let (_, checked) = w.post("/v1/check", check).await;
    assert_eq!(
        (&checked["allowed"], &checked["scope"]),
        (&json!(true), &json!("entity"))
    );
    let c = w.customer("u_team").await;
    assert_eq!(balance(entity(&c, "team-a"), "messages")["used"], 40);
    assert_eq!(balance(&c, "messages")["used"], 3);

    // Its webhooks (already delivered in order) changed nothing; reconcile sees no double
    // billing in two subscriptions of pro, one the entity's.
    w.drain().await;
    let output = tokio::task::block_in_place(|| w.reconcile_command(&[]).output().unwrap());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("DOUBLE BILLING"), "{stderr}");

    // The entity's renewal resets the entity's usage, not the customer's.
    let renewal = w.stripe.renew(&entity_sub).await.unwrap();
    w.stripe.pay_invoice(&renewal).await.unwrap();
    w.drain_retries().await;
    let c = w.customer("u_team").await;
    assert_eq!(balance(entity(&c, "team-a"), "messages")["used"], 0);
    assert_eq!(balance(&c, "messages")["used"], 3);
    assert!(
        c["invoices"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["stripe_id"] == renewal.as_str()),
        "the entity's invoices are the customer's to pay"
    );
    let (_, timeline) = w
        .app
        .api(Method::GET, "/v1/customers/u_team/timeline", None)
        .await;
    assert!(
        timeline["data"].as_array().unwrap().iter().any(|e| {
            e["kind"] == "plan.attached"
                && e["subscription_id"] == entity_sub.as_str()
                && e["entity_id"] == "team-a"
        }),
        "{timeline}"
    );

    // Deleting the entity ends its plan here and names the subscription left in Stripe;
    // that subscription's events are skipped, and the customer's plan is untouched.
    let (status, deleted) = w
        .app
        .api(Method::DELETE, "/v1/customers/u_team/entities/team-a", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(deleted["stripe_subscriptions"], json!([entity_sub]));
    w.stripe.cancel_subscription(&entity_sub).await.unwrap();
    w.drain().await;
    let skipped: String = sqlx::query_scalar(
        "SELECT last_error FROM events WHERE type = 'customer.subscription.deleted'",
    )
    .fetch_one(&w.app.pool)
    .await
    .unwrap();
    assert!(skipped.contains("which was deleted"), "{skipped}");
    let c = w.customer("u_team").await;
    assert_eq!(c["entities"], json!([]));
    assert_eq!(plan_ids(&c), [("pro".to_owned(), "active".to_owned())]);
    assert_eq!(balance(&c, "seats")["used"], 0);
}

#[tokio::test]
async fn without_a_grant_of_its_own_an_entity_uses_the_customers_balance() {
    let w = World::new().await;
    w.pro_customer("u_shared").await;
    w.entity("u_shared", "team-a").await;

    let check = json!({"customer_id": "u_shared", "entity_id": "team-a",
                       "feature_id": "messages", "required": 1_000});
    let (status, checked) = w.post("/v1/check", check.clone()).await;
    assert_eq!(status, StatusCode::OK, "{checked}");
    assert_eq!(
        (&checked["allowed"], &checked["balance"], &checked["scope"]),
        (&json!(true), &json!(1_000), &json!("customer"))
    );
    let track = json!({"customer_id": "u_shared", "entity_id": "team-a",
                       "feature_id": "messages", "value": 250, "idempotency_key": "k1"});
    let (_, tracked) = w.post("/v1/track", track.clone()).await;
    assert_eq!(
        (
            &tracked["balance"],
            &tracked["scope"],
            &tracked["duplicate"]
        ),
        (&json!(750), &json!("customer"), &json!(false))
    );
    let (_, checked) = w.post("/v1/check", check).await;
    assert_eq!(
        (&checked["balance"], &checked["scope"]),
        (&json!(750), &json!("customer"))
    );

    let nobody = json!({"customer_id": "u_shared", "entity_id": "nobody", "plan_id": "pro",
                        "success_url": "https://app.test/ok", "cancel_url": "https://app.test/no"});
    let (status, answer) = w.post("/v1/attach", nobody).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::NOT_FOUND, "entity_not_found")
    );

    // The entity gets a plan of its own: new usage is its own, but a retry of the usage
    // recorded on the customer's balance is still that one, once.
    let attach = json!({"customer_id": "u_shared", "entity_id": "team-a", "plan_id": "business",
                        "success_url": "https://app.test/ok", "cancel_url": "https://app.test/no"});
    let (status, answer) = w.post("/v1/attach", attach).await;
    assert!(status.is_success(), "{answer}");
    w.drain().await;
    let (_, retried) = w.post("/v1/track", track).await;
    assert_eq!(
        (
            &retried["balance"],
            &retried["scope"],
            &retried["duplicate"]
        ),
        (&json!(750), &json!("customer"), &json!(true))
    );
    let fresh = json!({"customer_id": "u_shared", "entity_id": "team-a",
                       "feature_id": "messages", "value": 5, "idempotency_key": "k2"});
    let (_, tracked) = w.post("/v1/track", fresh).await;
    assert_eq!(
        (&tracked["balance"], &tracked["scope"]),
        (&json!(9_995), &json!("entity"))
    );
    // A feature the entity's plan does not grant still comes from the customer.
    let c = w.customer("u_shared").await;
    assert_eq!(balance(&c, "messages")["used"], 250);
    assert_eq!(balance(entity(&c, "team-a"), "messages")["used"], 5);
    let support = json!({"customer_id": "u_shared", "entity_id": "team-a",
                         "feature_id": "priority_support"});
    let (_, checked) = w.post("/v1/check", support).await;
    assert_eq!(
        (&checked["allowed"], &checked["scope"]),
        (&json!(false), &json!("customer"))
    );
}

/// A small deterministic generator (xorshift) for delivery orders.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

/// Delivers the events Stripe made since `seen`, in an order the dice choose, each twice.
async fn deliver_shuffled(w: &World, seen: &mut HashSet<String>, dice: &mut Dice) {
    let mut pending: Vec<Value> = w
        .stripe
        .events()
        .into_iter()
        .filter(|e| seen.insert(e["id"].as_str().unwrap().to_owned()))
        .collect();
    let again = pending.clone();
    pending.extend(again);
    dice.shuffle(&mut pending);
    for event in pending {
        let (status, answer) = w.app.post_event(event.to_string().as_bytes()).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        if dice.next().is_multiple_of(2) {
            w.drain().await;
        }
    }
    w.drain().await;
}

/// Clears the Stripe customer's default payment method, through the (fake) Stripe API.
async fn forget_payment_method(w: &World, stripe_id: &str) {
    let url = format!(
        "{}/v1/customers/{stripe_id}",
        w.stripe.url().trim_end_matches('/')
    );
    let req = Request::post(url)
        .header("authorization", format!("Bearer {STRIPE_KEY}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from_static(
            b"invoice_settings%5Bdefault_payment_method%5D=",
        )))
        .unwrap();
    let (status, answer) = w.app.send(req).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

#[tokio::test]
async fn an_entity_subscription_maps_to_the_entity_in_any_delivery_order() {
    for seed in [1_u64, 7, 2026, 424_242] {
        let w = World::new().await;
        // The customer pays by checkout (no saved card), as will its entity.
        w.app.create_customer(json!({"id": "u_any"})).await;
        let attach = w.attach("u_any", "pro").await;
        w.drain().await;
        let session = w.stripe.checkout_sessions()[0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        w.stripe.complete_checkout(&session).await.unwrap();
        w.drain().await;
        assert_eq!(
            w.attach_state(attach["id"].as_str().unwrap()).await["state"],
            "completed"
        );
        w.entity("u_any", "team-a").await;
        // Checkout saved the card: forget it, so the entity pays by checkout too.
        let stripe_id = w.customer("u_any").await["stripe_id"]
            .as_str()
            .unwrap()
            .to_owned();
        forget_payment_method(&w, &stripe_id).await;
        w.drain().await;

        // From here Stripe's webhooks are held back, then delivered shuffled and twice.
        let mut seen: HashSet<String> = w
            .stripe
            .events()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect();
        w.stripe.set_delivery(Delivery::Drop);
        let mut dice = Dice(seed);
        let body = json!({"customer_id": "u_any", "entity_id": "team-a", "plan_id": "business",
                          "success_url": "https://app.test/ok", "cancel_url": "https://app.test/no"});
        let (status, entity_attach) = w.post("/v1/attach", body).await;
        assert!(status.is_success(), "{entity_attach}");
        w.drain().await;
        let id = entity_attach["id"].as_str().unwrap();
        assert_eq!(w.attach_state(id).await["state"], "checkout_required");
        let session = w
            .stripe
            .checkout_sessions()
            .into_iter()
            .find(|s| s["metadata"]["attach_id"] == id)
            .unwrap();
        assert_eq!(session["metadata"]["entity_id"], "team-a");
        w.stripe
            .complete_checkout(session["id"].as_str().unwrap())
            .await
            .unwrap();
        deliver_shuffled(&w, &mut seen, &mut dice).await;

        let state = w.attach_state(id).await;
        assert_eq!(
            (&state["state"], &state["entity_id"]),
            (&json!("completed"), &json!("team-a")),
            "seed {seed}: {state}"
        );
        let sub = state["stripe_subscription_id"].as_str().unwrap().to_owned();
        let c = w.customer("u_any").await;
        assert_eq!(
            plan_ids(&c),
            [("pro".to_owned(), "active".to_owned())],
            "seed {seed}: {c}"
        );
        let team = entity(&c, "team-a");
        assert_eq!(
            plan_ids(team),
            [("business".to_owned(), "active".to_owned())],
            "seed {seed}: {c}"
        );
        assert_eq!(team["products"][0]["stripe_subscription_id"], sub);
        assert_eq!(balance(team, "messages")["included"], 10_000);
        assert_eq!(balance(&c, "messages")["included"], 1_000);
        let dead: i64 = w
            .app
            .count("SELECT count(*) FROM events WHERE state IN ('dead', 'failed')")
            .await;
        assert_eq!(dead, 0, "seed {seed}");
        // Skipped only as redeliveries or older than what was applied: none unmapped.
        let unmapped: i64 = w
            .app
            .count(
                "SELECT count(*) FROM events
                 WHERE state = 'skipped' AND last_error NOT LIKE 'stale:%'",
            )
            .await;
        assert_eq!(unmapped, 0, "seed {seed}");

        // Its end too: the entity's plan ends (no default plan for an entity) and it uses
        // the customer's balance again; the customer's plan is untouched.
        w.stripe.cancel_subscription(&sub).await.unwrap();
        deliver_shuffled(&w, &mut seen, &mut dice).await;
        let c = w.customer("u_any").await;
        let team = entity(&c, "team-a");
        assert_eq!(team["products"], json!([]), "seed {seed}: {c}");
        assert_eq!(team["balances"], json!([]), "seed {seed}: {c}");
        assert_eq!(plan_ids(&c), [("pro".to_owned(), "active".to_owned())]);
        let check =
            json!({"customer_id": "u_any", "entity_id": "team-a", "feature_id": "messages"});
        let (_, checked) = w.post("/v1/check", check).await;
        assert_eq!(checked["scope"], "customer", "seed {seed}");
    }
}

#[tokio::test]
async fn the_console_lists_entities_filters_to_one_and_attaches_to_it() {
    let w = World::new().await;
    w.pro_customer("u_con").await;
    w.entity("u_con", "team-a").await;
    let mut console = ConsoleClient::new(&w.app);
    console.sign_in().await;

    let page = console.get("/console/customers/u_con").await;
    assert_eq!(page.status, StatusCode::OK);
    for text in [
        "<h2>Entities</h2>",
        "data-entity=\"team-a\"",
        "Team team-a",
        "href=\"/console/customers/u_con?entity=team-a\"",
        "name=\"entity_id\"",
        "Entity: Team team-a",
    ] {
        assert!(page.body.contains(text), "{text}: {}", page.body);
    }

    let csrf = page.field("csrf").unwrap();
    let answer = console
        .post(
            "/console/customers/u_con/attach",
            &[
                ("csrf", &csrf),
                ("entity_id", "team-a"),
                ("plan_id", "business"),
                ("quantity", "1"),
                ("proration", "default"),
                ("success_url", "https://app.test/ok"),
                ("cancel_url", "https://app.test/cancel"),
            ],
        )
        .await;
    assert_eq!(answer.location(), "/console/customers/u_con?entity=team-a");
    w.drain().await;

    // Filtered to the entity: its plan and balances, without the customer's plan actions.
    let page = console.get("/console/customers/u_con?entity=team-a").await;
    assert!(page.body.contains("Showing entity"), "{}", page.body);
    assert!(
        page.body.contains("data-plan=\"business\""),
        "{}",
        page.body
    );
    assert!(!page.body.contains("data-plan=\"pro\""), "{}", page.body);
    assert!(
        !page.body.contains("/plans/business/cancel"),
        "{}",
        page.body
    );
    assert!(page.body.contains("10,000 left"), "{}", page.body);
    // The whole customer: its own plan.
    let page = console.get("/console/customers/u_con").await;
    assert!(page.body.contains("data-plan=\"pro\""), "{}", page.body);
    assert!(
        !page.body.contains("data-plan=\"business\""),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("Business attached · entity team-a"),
        "the timeline names the entity: {}",
        page.body
    );
    let page = console.get("/console/customers/u_con?entity=nobody").await;
    assert!(page.body.contains("has no entity"), "{}", page.body);
    assert!(page.body.contains("data-plan=\"pro\""), "{}", page.body);
}
