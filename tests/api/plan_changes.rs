//! `POST /v1/cancel`, `/v1/uncancel`, `/v1/quantity` and `GET /v1/plan_changes/{id}` against
//! the fake Stripe: what each does in Stripe and here, bad input, idempotency, races.

use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use crate::stripe_side::World;
use crate::stripe_side::{new_events, settle, stored_events, stored_ids};

/// A paying customer `id` holding `plan` (a direct subscription, paid), and its subscription.
pub(crate) async fn subscribed(w: &World, id: &str, plan: &str, quantity: i64) -> String {
    w.paying_customer(id).await;
    let body = json!({"customer_id": id, "plan_id": plan, "quantity": quantity,
                      "success_url": "https://app.test/ok", "cancel_url": "https://app.test/no"});
    let (status, attach) = w.app.api(Method::POST, "/v1/attach", Some(body)).await;
    assert!(status.is_success(), "{status}: {attach}");
    w.drain().await;
    let attach = w.attach_state(attach["id"].as_str().unwrap()).await;
    assert_eq!(attach["state"], "active", "{attach}");
    attach["stripe_subscription_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Posts a change and runs its job, then waits until Stripe's webhooks about it (and a read
/// of the subscription a same-second tie queues) are stored and applied; returns the change
/// as it ends. A change that reached Stripe must have come back as a webhook about its
/// subscription, applied here.
async fn change(w: &World, route: &str, body: Value) -> Value {
    let before = stored_ids(w).await;
    let (status, answer) = w.app.api(Method::POST, route, Some(body)).await;
    assert!(status.is_success(), "{route}: {status}: {answer}");
    settle(w).await;
    let id = answer["id"].as_str().unwrap();
    let (status, done) = w
        .app
        .api(Method::GET, &format!("/v1/plan_changes/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    if let Some(sub) = done["stripe_subscription_id"].as_str()
        && done["outcome"] != "unchanged"
    {
        let came = new_events(w, sub, &before).await;
        assert!(
            !came.is_empty() && came.iter().all(|(_, state)| ran(state)),
            "{route}: Stripe's webhooks about {sub} must arrive and be applied (or skipped as \
             older than what is known): {came:?}"
        );
    }
    done
}

/// An event whose application ran to its end: applied, or skipped as older than what is known.
fn ran(state: &str) -> bool {
    state == "applied" || state == "skipped"
}

pub(crate) fn stripe_subscription(w: &World, id: &str) -> Value {
    w.stripe
        .subscriptions()
        .into_iter()
        .find(|s| s["id"] == id)
        .unwrap()
}

pub(crate) fn product<'a>(view: &'a Value, plan: &str) -> Option<&'a Value> {
    view["products"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["plan_id"] == plan)
}

async fn timeline(w: &World, customer: &str) -> Vec<Value> {
    let (status, page) = w
        .app
        .api(
            Method::GET,
            &format!("/v1/customers/{customer}/timeline?limit=100"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    page["data"].as_array().unwrap().clone()
}

fn sent(request: &fake_stripe::RecordedRequest, key: &str, value: &str) -> bool {
    request.form.iter().any(|(k, v)| k == key && v == value)
}

fn balance(view: &Value, feature: &str) -> Value {
    view["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["feature_id"] == feature)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn cancel_at_period_end_then_uncancel_round_trips_through_stripe() {
    let w = World::new().await;
    let sub = subscribed(&w, "u_pc1", "pro", 1).await;

    let done = change(
        &w,
        "/v1/cancel",
        json!({"customer_id": "u_pc1", "plan_id": "pro", "at": "period_end"}),
    )
    .await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["outcome"], "canceled");
    assert_eq!(done["stripe_subscription_id"], sub.as_str());
    assert_eq!(done["requested_by"], "api");
    assert_eq!(stripe_subscription(&w, &sub)["cancel_at_period_end"], true);
    let view = w.customer("u_pc1").await;
    let pro = product(&view, "pro").expect("still live until the period ends");
    assert_eq!(pro["status"], "active");
    assert_eq!(pro["cancel_at_period_end"], true);
    let key = format!("rc-change-{}-cancel", done["id"].as_str().unwrap());
    assert_eq!(
        w.calls("POST", &format!("/v1/subscriptions/{sub}")),
        vec![Some(key)]
    );

    let done = change(
        &w,
        "/v1/uncancel",
        json!({"customer_id": "u_pc1", "plan_id": "pro"}),
    )
    .await;
    assert_eq!(done["outcome"], "uncanceled", "{done}");
    assert_eq!(stripe_subscription(&w, &sub)["cancel_at_period_end"], false);
    let view = w.customer("u_pc1").await;
    assert_eq!(
        product(&view, "pro").unwrap()["cancel_at_period_end"],
        false,
        "{view} {:?}",
        stored_events(&w, &sub).await
    );

    let entries = timeline(&w, "u_pc1").await;
    for kind in ["plan.canceled", "plan.uncanceled"] {
        let entry = entries
            .iter()
            .find(|e| e["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind}: {entries:#?}"));
        assert_eq!(entry["plan_id"], "pro");
        // Our job recorded it first; Stripe's webhook about it changed nothing more.
        assert_eq!(entry["source"], "api", "{entry}");
        assert_eq!(entries.iter().filter(|e| e["kind"] == kind).count(), 1);
    }

    // Nothing is set to cancel any more.
    let (status, refused) = w
        .app
        .api(
            Method::POST,
            "/v1/uncancel",
            Some(json!({"customer_id": "u_pc1", "plan_id": "pro"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(refused["error"]["code"], "plan_not_canceling");
}

#[tokio::test]
async fn cancel_now_ends_the_subscription_and_the_default_plan_takes_over() {
    let w = World::new().await;
    let sub = subscribed(&w, "u_pc2", "pro", 1).await;
    let done = change(
        &w,
        "/v1/cancel",
        json!({"customer_id": "u_pc2", "plan_id": "pro", "at": "now"}),
    )
    .await;
    assert_eq!(done["outcome"], "ended", "{done}");
    assert_eq!(stripe_subscription(&w, &sub)["status"], "canceled");
    // Stripe's webhooks (deleted) arrive too, and change nothing.
    settle(&w).await;
    let deleted: Vec<_> = stored_events(&w, &sub)
        .await
        .into_iter()
        .filter(|(_, kind, _)| kind == "customer.subscription.deleted")
        .map(|(_, _, state)| state)
        .collect();
    assert_eq!(deleted, ["applied"], "the deleted webhook came, once");
    let view = w.customer("u_pc2").await;
    assert!(product(&view, "pro").is_none(), "{view}");
    assert_eq!(product(&view, "free").unwrap()["status"], "active");
    let ended = &view["ended_products"][0];
    assert_eq!(ended["plan_id"], "pro");
    assert_eq!(
        balance(&view, "messages")["included"],
        100,
        "the free plan's"
    );
    let entries = timeline(&w, "u_pc2").await;
    let expired = entries
        .iter()
        .find(|e| e["kind"] == "plan.expired" && e["plan_id"] == "pro")
        .unwrap();
    assert_eq!(expired["source"], "api");
    let (status, refused) = w
        .app
        .api(
            Method::POST,
            "/v1/cancel",
            Some(json!({"customer_id": "u_pc2", "plan_id": "pro"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{refused}");
    assert_eq!(refused["error"]["code"], "plan_not_held");
}

#[tokio::test]
async fn a_plan_without_a_subscription_ends_here_without_calling_stripe() {
    let w = World::new().await;
    let (status, _) = w.app.create_customer(json!({"id": "u_pc3"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let before = w.stripe.requests().len();
    let done = change(
        &w,
        "/v1/cancel",
        json!({"customer_id": "u_pc3", "plan_id": "free", "at": "period_end"}),
    )
    .await;
    assert_eq!(done["outcome"], "ended", "{done}");
    assert_eq!(w.stripe.requests().len(), before, "no Stripe call");
    let view = w.customer("u_pc3").await;
    assert!(product(&view, "free").is_none(), "{view}");
    assert_eq!(view["ended_products"][0]["plan_id"], "free");
    assert_eq!(balance(&view, "messages"), Value::Null);
    // Quantity and uncancel need a subscription (or a cancellation) to act on.
    let (status, _) = w.app.create_customer(json!({"id": "u_pc3b"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, refused) = w
        .app
        .api(
            Method::POST,
            "/v1/quantity",
            Some(json!({"customer_id": "u_pc3b", "plan_id": "free", "quantity": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(refused["error"]["code"], "no_subscription");
}

#[tokio::test]
async fn quantity_changes_the_seats_in_stripe_and_per_unit_balances_follow() {
    let w = World::new().await;
    let sub = subscribed(&w, "u_pc4", "team", 3).await;
    let item = &stripe_subscription(&w, &sub)["items"]["data"][0];
    assert_eq!(item["quantity"], 3, "attach asked for 3 seats");
    let view = w.customer("u_pc4").await;
    assert_eq!(product(&view, "team").unwrap()["quantity"], 3);
    assert_eq!(balance(&view, "seats")["included"], 3, "1 seat per unit");
    assert_eq!(
        balance(&view, "messages")["included"],
        6000,
        "2000 per unit"
    );

    let done = change(
        &w,
        "/v1/quantity",
        json!({"customer_id": "u_pc4", "plan_id": "team", "quantity": 5, "prorate": false}),
    )
    .await;
    assert_eq!(done["outcome"], "quantity", "{done}");
    assert_eq!(done["quantity"], 5);
    assert_eq!(done["prorate"], false);
    let stripe = stripe_subscription(&w, &sub);
    assert_eq!(stripe["items"]["data"][0]["quantity"], 5);
    let view = w.customer("u_pc4").await;
    assert_eq!(product(&view, "team").unwrap()["quantity"], 5);
    assert_eq!(balance(&view, "seats")["included"], 5);
    assert_eq!(balance(&view, "messages")["included"], 10_000);
    let request = w
        .stripe
        .requests()
        .into_iter()
        .rfind(|r| r.method == "POST" && r.path == format!("/v1/subscriptions/{sub}"))
        .unwrap();
    assert!(
        sent(&request, "proration_behavior", "none"),
        "{:?}",
        request.form
    );
    let entries = timeline(&w, "u_pc4").await;
    let counted = entries
        .iter()
        .find(|e| e["kind"] == "plan.quantity")
        .unwrap();
    assert_eq!(
        (counted["quantity"].clone(), counted["from"].clone()),
        (json!(5), json!(3))
    );

    // The same count again calls Stripe no more.
    let calls = w.stripe.requests().len();
    let again = change(
        &w,
        "/v1/quantity",
        json!({"customer_id": "u_pc4", "plan_id": "team", "quantity": 5}),
    )
    .await;
    assert_eq!(again["outcome"], "unchanged");
    assert_eq!(
        w.stripe.requests().len(),
        calls + 1,
        "one read of the subscription"
    );
}

#[tokio::test]
async fn uncancel_drops_a_downgrade_scheduled_for_the_period_end() {
    let w = World::new().await;
    let sub = subscribed(&w, "u_pc5", "business", 1).await;
    let attach = w.attach("u_pc5", "pro").await;
    w.drain().await;
    assert_eq!(
        w.attach_state(attach["id"].as_str().unwrap()).await["state"],
        "scheduled"
    );
    let (status, refused) = w
        .app
        .api(
            Method::POST,
            "/v1/cancel",
            Some(json!({"customer_id": "u_pc5", "plan_id": "pro"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(refused["error"]["code"], "plan_scheduled");

    let done = change(
        &w,
        "/v1/uncancel",
        json!({"customer_id": "u_pc5", "plan_id": "pro"}),
    )
    .await;
    assert_eq!(done["outcome"], "unscheduled", "{done}");
    let stripe = stripe_subscription(&w, &sub);
    let price = stripe["items"]["data"][0]["price"]["id"].as_str().unwrap();
    assert_eq!(
        stripe["items"]["data"][0]["price"]["metadata"]["plan_id"], "business",
        "the price went back: {price}"
    );
    // The webhooks of both swaps arrive; the renewal bills business.
    let invoice = w.stripe.renew(&sub).await.unwrap();
    w.stripe.pay_invoice(&invoice).await.unwrap();
    settle(&w).await;
    let paid = stored_events(&w, &invoice).await;
    assert!(
        paid.iter()
            .any(|(_, kind, state)| kind == "invoice.paid" && state == "applied"),
        "the renewal's webhooks came: {paid:?}"
    );
    let view = w.customer("u_pc5").await;
    assert_eq!(product(&view, "business").unwrap()["status"], "active");
    assert!(product(&view, "pro").is_none(), "{view}");
    let ended = view["ended_products"].as_array().unwrap();
    assert!(
        ended.iter().all(|p| p["plan_id"] != "pro"),
        "a downgrade that never started is not an ended plan: {ended:?}"
    );
    let entries = timeline(&w, "u_pc5").await;
    assert!(
        entries
            .iter()
            .any(|e| e["kind"] == "plan.unscheduled" && e["plan_id"] == "pro"),
        "{entries:#?}"
    );
}

#[tokio::test]
async fn bad_input_names_the_field_and_unknowns_are_404() {
    let w = World::new().await;
    subscribed(&w, "u_pc6", "pro", 1).await;
    for (route, body, field) in [
        (
            "/v1/cancel",
            json!({"customer_id": "u_pc6", "plan_id": "pro", "at": "tomorrow"}),
            "at",
        ),
        (
            "/v1/quantity",
            json!({"customer_id": "u_pc6", "plan_id": "pro", "quantity": 0}),
            "quantity",
        ),
        (
            "/v1/quantity",
            json!({"customer_id": "u_pc6", "plan_id": "pro", "quantity": 2_000_000}),
            "quantity",
        ),
        (
            "/v1/uncancel",
            json!({"customer_id": "", "plan_id": "pro"}),
            "customer_id",
        ),
        ("/v1/uncancel", json!({"customer_id": "u_pc6"}), "plan_id"),
        (
            "/v1/cancel",
            json!({"customer_id": "u_pc6", "plan_id": "pro", "when": "now"}),
            "when",
        ),
        (
            "/v1/attach",
            json!({"customer_id": "u_pc6", "plan_id": "team", "quantity": -1,
                   "success_url": "https://a.test/", "cancel_url": "https://a.test/"}),
            "quantity",
        ),
    ] {
        let (status, answer) = w.app.api(Method::POST, route, Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{route} {body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{route} {body}: {message}");
    }
    for (body, code) in [
        (
            json!({"customer_id": "nobody", "plan_id": "pro"}),
            "customer_not_found",
        ),
        (
            json!({"customer_id": "u_pc6", "plan_id": "platinum"}),
            "plan_not_found",
        ),
        (
            json!({"customer_id": "u_pc6", "plan_id": "business"}),
            "plan_not_held",
        ),
    ] {
        let (status, answer) = w.app.api(Method::POST, "/v1/cancel", Some(body)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
        assert_eq!(answer["error"]["code"], code);
    }
    let (status, answer) = w
        .app
        .api(Method::GET, "/v1/plan_changes/pc_nope", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(answer["error"]["code"], "plan_change_not_found");
}

#[tokio::test]
async fn one_idempotency_key_makes_one_change() {
    let w = World::new().await;
    let sub = subscribed(&w, "u_pc7", "pro", 1).await;
    let body = json!({"customer_id": "u_pc7", "plan_id": "pro", "idempotency_key": "k-1"});
    let (first_status, first) = w
        .app
        .api(Method::POST, "/v1/cancel", Some(body.clone()))
        .await;
    assert_eq!(first_status, StatusCode::ACCEPTED, "{first}");
    assert_eq!(first["duplicate"], false);
    w.drain().await;
    let (status, second) = w.app.api(Method::POST, "/v1/cancel", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["duplicate"], true);
    assert_eq!(second["id"], first["id"]);
    assert_eq!(second["state"], "done");
    w.drain().await;
    let updates = w.calls("POST", &format!("/v1/subscriptions/{sub}"));
    assert_eq!(updates.len(), 1, "{updates:?}");
    let changes: i64 = sqlx::query_scalar("SELECT count(*) FROM plan_changes")
        .fetch_one(&w.app.pool)
        .await
        .unwrap();
    assert_eq!(changes, 1);
}

#[tokio::test]
async fn two_edits_racing_run_one_after_the_other_and_the_later_wins() {
    let w = World::new().await;
    let sub = subscribed(&w, "u_pc8", "team", 1).await;
    let ask = |quantity: i64| {
        let body = json!({"customer_id": "u_pc8", "plan_id": "team", "quantity": quantity});
        w.app.api(Method::POST, "/v1/quantity", Some(body))
    };
    let ((s1, a), (s2, b)) = tokio::join!(ask(4), ask(7));
    assert_eq!(
        (s1, s2),
        (StatusCode::ACCEPTED, StatusCode::ACCEPTED),
        "{a} {b}"
    );
    assert_ne!(a["id"], b["id"]);
    w.drain().await;
    let (_, a) = w
        .app
        .api(
            Method::GET,
            &format!("/v1/plan_changes/{}", a["id"].as_str().unwrap()),
            None,
        )
        .await;
    let (_, b) = w
        .app
        .api(
            Method::GET,
            &format!("/v1/plan_changes/{}", b["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!((&a["state"], &b["state"]), (&json!("done"), &json!("done")));
    // A customer's jobs run one at a time: the one finished last ran last, and its count
    // is Stripe's.
    let finished = |c: &Value| {
        chrono::DateTime::parse_from_rfc3339(c["updated_at"].as_str().unwrap()).unwrap()
    };
    let later = if finished(&a) > finished(&b) { &a } else { &b };
    let stripe = stripe_subscription(&w, &sub)["items"]["data"][0]["quantity"].clone();
    assert_eq!(stripe, later["quantity"]);
    settle(&w).await;
    let updates = stored_events(&w, &sub)
        .await
        .into_iter()
        .filter(|(_, kind, state)| kind == "customer.subscription.updated" && ran(state))
        .count();
    assert!(updates >= 2, "both quantity changes came back as webhooks");
    let view = w.customer("u_pc8").await;
    assert_eq!(product(&view, "team").unwrap()["quantity"], stripe);
    assert_eq!(balance(&view, "seats")["included"], stripe);

    // Two cancels at once: one changes Stripe, the other finds it done.
    let cancel = || {
        let body = json!({"customer_id": "u_pc8", "plan_id": "team"});
        w.app.api(Method::POST, "/v1/cancel", Some(body))
    };
    let ((_, c1), (_, c2)) = tokio::join!(cancel(), cancel());
    w.drain().await;
    let mut outcomes = Vec::new();
    for c in [c1, c2] {
        let (_, done) = w
            .app
            .api(
                Method::GET,
                &format!("/v1/plan_changes/{}", c["id"].as_str().unwrap()),
                None,
            )
            .await;
        outcomes.push(done["outcome"].as_str().unwrap().to_owned());
    }
    outcomes.sort();
    assert_eq!(outcomes, ["canceled", "unchanged"]);
    let cancels = w
        .stripe
        .requests()
        .into_iter()
        .filter(|r| sent(r, "cancel_at_period_end", "true"))
        .count();
    assert_eq!(cancels, 1);
}
