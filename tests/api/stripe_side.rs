//! The Stripe side against the project's fake Stripe API: lazy customers, attaches, retries,
//! usage billing on renewal, reconcile.

use std::process::Command;
use std::time::Duration;

use fake_stripe::{FakeConfig, FakeStripe, Fault, WebhookSecret};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use stripe_reconciler::config::{Secret, Settings};

use crate::helpers::*;

pub(crate) const STRIPE_KEY: &str = "sk_test_fake_9f2c";

/// A fake Stripe whose webhooks reach the app, and the app pointed at it.
pub(crate) struct World {
    pub app: TestApp,
    pub stripe: FakeStripe,
}

impl World {
    pub(crate) async fn new() -> Self {
        Self::with(|_| {}).await
    }

    pub(crate) async fn with(customize: impl FnOnce(&mut Settings)) -> Self {
        // The fake first, since the app needs its URL; webhooks go to the app once it listens
        // (on a port of its own: a port picked and freed earlier may be taken meanwhile).
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stripe = FakeStripe::start(
            listener,
            FakeConfig {
                webhook_url: None,
                webhook_secret: Some(WebhookSecret::new(SECRET_NEW)),
            },
        )
        .await;
        let base = stripe.url();
        let app = TestApp::spawn_with(|s| {
            s.stripe.api_key = Some(Secret::new(STRIPE_KEY));
            s.stripe.api_base = base;
            s.stripe.timeout_ms = 2_000;
            s.stripe.attach_wait_ms = 0;
            customize(s);
        })
        .await;
        stripe
            .deliver_webhooks_to(app.url("/webhooks/stripe"))
            .unwrap();
        Self { app, stripe }
    }

    pub(crate) async fn drain(&self) {
        self.app.engine.run_until_idle().await.unwrap();
    }

    /// Lets jobs that wait for a retry run now, then drains.
    pub(crate) async fn drain_retries(&self) {
        for _ in 0..5 {
            sqlx::query("UPDATE jobs SET run_at = now() WHERE state = 'pending'")
                .execute(&self.app.pool)
                .await
                .unwrap();
            self.drain().await;
        }
    }

    pub(crate) async fn customer(&self, id: &str) -> Value {
        let (status, body) = self
            .app
            .api(Method::GET, &format!("/v1/customers/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub(crate) async fn attach(&self, customer: &str, plan: &str) -> Value {
        let body = json!({"customer_id": customer, "plan_id": plan,
                          "success_url": "https://app.test/ok", "cancel_url": "https://app.test/cancel"});
        let (status, answer) = self.app.api(Method::POST, "/v1/attach", Some(body)).await;
        assert!(status.is_success(), "{status}: {answer}");
        answer
    }

    pub(crate) async fn attach_state(&self, id: &str) -> Value {
        let (status, body) = self
            .app
            .api(Method::GET, &format!("/v1/attach/{id}"), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        body
    }

    /// A customer of ours with a Stripe customer that has a default payment method.
    pub(crate) async fn paying_customer(&self, id: &str) -> String {
        let (status, _) = self
            .app
            .create_customer(json!({"id": id, "create_in_stripe": true}))
            .await;
        assert_eq!(status, StatusCode::CREATED);
        self.drain().await;
        let stripe_id = self.customer(id).await["stripe_id"]
            .as_str()
            .unwrap()
            .to_owned();
        self.stripe.set_default_payment_method(&stripe_id);
        stripe_id
    }

    /// `stripe-reconciler reconcile ARGS` against this world, not yet run.
    pub(crate) fn reconcile_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_stripe-reconciler"));
        command
            .arg("reconcile")
            .args(args)
            .env_clear()
            .env("DATABASE_URL", &self.app.database_url)
            .env("STRIPE_API_KEY", STRIPE_KEY)
            .env("STRIPE_API_BASE", self.stripe.url())
            .env(
                "RECONCILER_CATALOG",
                fixtures_dir().join("../config/catalog.example.toml"),
            );
        command
    }

    pub(crate) fn calls(&self, method: &str, path: &str) -> Vec<Option<String>> {
        self.stripe
            .requests()
            .into_iter()
            .filter(|r| r.method == method && r.path == path)
            .map(|r| r.idempotency_key)
            .collect()
    }
}

pub(crate) fn plan_ids(customer: &Value) -> Vec<(String, String)> {
    customer["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["plan_id"].as_str().unwrap().to_owned(),
                p["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Drains until every webhook the fake sent is stored here and its application has run (its
/// event is no longer `received` or `processing`) and no job is due within 2 s, for a call whose webhooks reach the app a
/// moment after its answer; panics after about 4 s. Returns the events the fake sent, in
/// order, each of them stored and finished. Passes at once when the fake sent nothing: assert
/// afterwards on what the webhooks should have left (see [`stored_events`]).
pub(crate) async fn settle(w: &World) -> Vec<Value> {
    let mut waiting: Vec<String> = Vec::new();
    for _ in 0..200 {
        w.drain().await;
        let sent: Vec<Value> = w
            .stripe
            .events()
            .into_iter()
            .filter(|e| e["pending_webhooks"] == 1)
            .collect();
        let ids: Vec<String> = sent
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect();
        waiting = sqlx::query_scalar(
            "SELECT id FROM unnest($1::text[]) AS sent(id)
             WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = sent.id
                               AND e.state NOT IN ('received', 'processing'))",
        )
        .bind(&ids)
        .fetch_all(&w.app.pool)
        .await
        .unwrap();
        // A job retrying soon (a read of a subscription that timed out, say) is not done.
        let due: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM jobs
             WHERE state = 'pending' AND run_at < now() + interval '2 seconds'",
        )
        .fetch_one(&w.app.pool)
        .await
        .unwrap();
        if waiting.is_empty() && due == 0 {
            // What the applications queued (a read of a subscription, say) runs too.
            w.drain().await;
            return sent;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the fake's webhooks did not all arrive and finish: {waiting:?}");
}

/// The id, type and state of each stored event about `object_id` (Stripe's id of the event's
/// object), oldest first: what tells that a webhook came.
pub(crate) async fn stored_events(w: &World, object_id: &str) -> Vec<(String, String, String)> {
    sqlx::query_as("SELECT id, type, state FROM events WHERE object_id = $1 ORDER BY created, id")
        .bind(object_id)
        .fetch_all(&w.app.pool)
        .await
        .unwrap()
}

/// Panics unless a webhook of type `kind` about `object_id` is stored and its application ran
/// to its end (applied, or skipped as older than what is known): what a wait for webhooks
/// asserts afterwards, since [`settle`] also passes when none came.
pub(crate) async fn assert_came(w: &World, object_id: &str, kind: &str) {
    let stored = stored_events(w, object_id).await;
    assert!(
        stored
            .iter()
            .any(|(_, k, state)| k == kind && (state == "applied" || state == "skipped")),
        "a {kind} webhook about {object_id} must have come and been applied: {stored:?}"
    );
}

/// The ids of every stored event: take before an action, to tell which events it brought.
pub(crate) async fn stored_ids(w: &World) -> std::collections::HashSet<String> {
    sqlx::query_scalar("SELECT id FROM events")
        .fetch_all(&w.app.pool)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// The stored events about `object_id` that are not in `before`, each `(type, state)`.
pub(crate) async fn new_events(
    w: &World,
    object_id: &str,
    before: &std::collections::HashSet<String>,
) -> Vec<(String, String)> {
    stored_events(w, object_id)
        .await
        .into_iter()
        .filter(|(id, _, _)| !before.contains(id))
        .map(|(_, kind, state)| (kind, state))
        .collect()
}

#[tokio::test]
async fn create_in_stripe_makes_one_stripe_customer_carrying_our_id() {
    let w = World::new().await;
    let (status, created) = w
        .app
        .create_customer(json!({"id": "u_cis", "email": "a@b.test", "create_in_stripe": true}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        created["stripe_id"],
        Value::Null,
        "created through the outbox"
    );
    w.drain().await;
    // Asking again changes nothing.
    w.app
        .create_customer(json!({"id": "u_cis", "create_in_stripe": true}))
        .await;
    w.drain().await;

    let stripe_id = w.customer("u_cis").await["stripe_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let customers = w.stripe.customers();
    assert_eq!(customers.len(), 1);
    assert_eq!(customers[0]["id"], stripe_id.as_str());
    assert_eq!(customers[0]["metadata"]["customer_id"], "u_cis");
    assert_eq!(customers[0]["email"], "a@b.test");
    let keys = w.calls("POST", "/v1/customers");
    assert!(
        keys.iter()
            .all(|k| k.as_deref().is_some_and(|k| k.starts_with("rc-customer-"))),
        "{keys:?}"
    );
}

#[tokio::test]
async fn linking_a_stripe_id_writes_our_id_into_its_metadata() {
    let w = World::new().await;
    let api = stripe_reconciler::stripe::client::StripeApi::new(
        &Secret::new(STRIPE_KEY),
        &w.stripe.url(),
        Duration::from_secs(2),
    )
    .unwrap();
    let existing = api
        .create_customer("by-hand-1", Some("Old"), None, Default::default())
        .await
        .unwrap();

    let (status, linked) = w
        .app
        .create_customer(json!({"id": "u_link", "stripe_id": existing.id}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{linked}");
    assert_eq!(linked["stripe_id"], existing.id.as_str(), "stored at once");
    w.drain().await;

    let customer = w
        .stripe
        .customers()
        .into_iter()
        .find(|c| c["id"] == existing.id.as_str())
        .unwrap();
    assert_eq!(customer["metadata"]["customer_id"], "u_link");
    assert_eq!(w.stripe.customers().len(), 1, "no second Stripe customer");

    // Another customer of ours cannot take the same Stripe customer.
    let (status, body) = w
        .app
        .create_customer(json!({"id": "u_other", "stripe_id": existing.id}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("stripe_id_conflict"))
    );
}

#[tokio::test]
async fn attach_with_a_saved_card_subscribes_and_provisions_at_once() {
    let w = World::new().await;
    w.paying_customer("u_direct").await;

    let attach = w.attach("u_direct", "pro").await;
    w.drain().await;

    let done = w.attach_state(attach["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "active", "{done}");
    let c = w.customer("u_direct").await;
    assert_eq!(plan_ids(&c), [("pro".to_owned(), "active".to_owned())]);
    assert_eq!(
        c["products"][0]["stripe_subscription_id"],
        done["stripe_subscription_id"]
    );
    assert_eq!(c["balances"][0]["included"], 1000);
    let subs = w.stripe.subscriptions();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0]["metadata"]["customer_id"], "u_direct");
    assert_eq!(subs[0]["metadata"]["plan_id"], "pro");
    // The catalog was synced lazily: a product and a price carrying the plan id.
    assert_eq!(
        w.calls("POST", "/v1/products").len(),
        2,
        "the plan and its usage feature"
    );
    // The webhooks Stripe sent for the new subscription agree with what we provisioned.
    w.drain().await;
    assert_eq!(
        plan_ids(&w.customer("u_direct").await),
        [("pro".to_owned(), "active".to_owned())]
    );
}

#[tokio::test]
async fn attach_without_a_card_goes_through_checkout_completed_by_webhook() {
    let w = World::new().await;
    w.app.create_customer(json!({"id": "u_checkout"})).await;

    let attach = w.attach("u_checkout", "pro").await;
    w.drain().await;
    let pending = w.attach_state(attach["id"].as_str().unwrap()).await;
    assert_eq!(pending["state"], "checkout_required", "{pending}");
    let url = pending["checkout_url"].as_str().unwrap();
    assert!(url.starts_with(&w.stripe.url()), "{url}");
    let session = w.stripe.checkout_sessions().into_iter().next().unwrap();
    assert_eq!(session["metadata"]["attach_id"], attach["id"]);
    assert_eq!(session["metadata"]["customer_id"], "u_checkout");
    assert_eq!(
        plan_ids(&w.customer("u_checkout").await),
        [("free".to_owned(), "active".to_owned())]
    );

    w.stripe
        .complete_checkout(session["id"].as_str().unwrap())
        .await
        .unwrap();
    w.drain().await;

    let done = w.attach_state(attach["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "completed");
    let c = w.customer("u_checkout").await;
    assert_eq!(plan_ids(&c), [("pro".to_owned(), "active".to_owned())]);
    assert_eq!(c["balances"][0]["included"], 1000);
    assert_eq!(c["invoices"][0]["status"], "paid");
}

#[tokio::test]
async fn with_workers_running_the_first_answer_usually_carries_the_checkout_url() {
    let w = World::with(|s| {
        s.engine.workers = 2;
        s.stripe.attach_wait_ms = 5_000;
    })
    .await;
    w.app.create_customer(json!({"id": "u_fast"})).await;
    let attach = w.attach("u_fast", "pro").await;
    assert_eq!(attach["state"], "checkout_required", "{attach}");
    assert!(attach["checkout_url"].is_string());
    w.app.shutdown.cancel();
}

#[tokio::test]
async fn a_failed_stripe_call_is_retried_and_creates_exactly_one_subscription() {
    let w = World::new().await;
    w.paying_customer("u_retry").await;
    w.stripe
        .fail_next("POST", "/v1/subscriptions", Fault::Status500, 1);
    // The next attempt takes effect, but its answer comes too late for our timeout.
    w.stripe.fail_next(
        "POST",
        "/v1/subscriptions",
        Fault::Delay(Duration::from_millis(2_500)),
        1,
    );

    let attach = w.attach("u_retry", "pro").await;
    w.drain_retries().await;

    assert_eq!(
        w.attach_state(attach["id"].as_str().unwrap()).await["state"],
        "active"
    );
    assert_eq!(
        w.stripe.subscriptions().len(),
        1,
        "one subscription despite three attempts"
    );
    // The third attempt finds the subscription the second one made in Stripe and takes it
    // over; had it posted again, the shared key would still have made nothing new.
    let keys = w.calls("POST", "/v1/subscriptions");
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(w.calls("GET", "/v1/subscriptions").len() >= 3);
    assert!(
        keys.windows(2).all(|k| k[0] == k[1]),
        "one idempotency key for every attempt: {keys:?}"
    );
}

#[tokio::test]
async fn ten_concurrent_attaches_for_a_new_customer_create_one_stripe_customer() {
    let w = World::new().await;
    w.app.create_customer(json!({"id": "u_ten"})).await;
    let attaches = futures::future::join_all((0..10).map(|_| w.attach("u_ten", "pro"))).await;
    assert_eq!(attaches.len(), 10);
    w.drain().await;

    assert_eq!(w.stripe.customers().len(), 1);
    let stripe_id = w.customer("u_ten").await["stripe_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(w.stripe.customers()[0]["id"], stripe_id.as_str());
}

#[tokio::test]
async fn renewal_usage_is_billed_once_under_redelivery_and_retries() {
    let w = World::new().await;
    w.paying_customer("u_usage").await;
    let attach = w.attach("u_usage", "pro").await;
    w.drain().await;
    let subscription =
        w.attach_state(attach["id"].as_str().unwrap()).await["stripe_subscription_id"]
            .as_str()
            .unwrap()
            .to_owned();
    let track = json!({"customer_id": "u_usage", "feature_id": "messages", "value": 1_500, "idempotency_key": "t1"});
    assert_eq!(
        w.app.api(Method::POST, "/v1/track", Some(track)).await.0,
        StatusCode::OK
    );

    // The first invoice item call's answer is lost: the job retries with the same key.
    w.stripe.fail_next(
        "POST",
        "/v1/invoiceitems",
        Fault::Delay(Duration::from_millis(2_500)),
        1,
    );
    let invoice = w.stripe.renew(&subscription).await.unwrap();
    w.drain_retries().await;

    // Redeliver the invoice.created event, and re-apply it as `events replay` would.
    let created: Value = w
        .stripe
        .events()
        .into_iter()
        .find(|e| e["type"] == "invoice.created" && e["data"]["object"]["id"] == invoice.as_str())
        .unwrap();
    w.app.post_event(created.to_string().as_bytes()).await;
    stripe_reconciler::ingest::replay(
        &w.app.pool,
        chrono::Utc::now() - chrono::Duration::hours(1),
        Some("invoice.created"),
        &Default::default(),
    )
    .await
    .unwrap();
    w.drain_retries().await;

    let items: Vec<Value> = w
        .stripe
        .invoice_items()
        .into_iter()
        .filter(|i| i["invoice"] == invoice.as_str())
        .collect();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(
        items[0]["amount"],
        500 * 5,
        "500 messages over the 1,000 included, at 5 each"
    );
    assert_eq!(items[0]["metadata"]["feature_id"], "messages");
    let keys = w.calls("POST", "/v1/invoiceitems");
    assert!(
        keys.iter()
            .all(|k| k.as_deref() == Some(&format!("rc-usage-{invoice}-messages"))),
        "{keys:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_repairs_a_status_changed_behind_our_back() {
    let w = World::new().await;
    w.paying_customer("u_drift").await;
    let attach = w.attach("u_drift", "pro").await;
    w.drain().await;
    let subscription =
        w.attach_state(attach["id"].as_str().unwrap()).await["stripe_subscription_id"]
            .as_str()
            .unwrap()
            .to_owned();
    w.stripe.set_subscription_status(&subscription, "past_due");

    let reconcile = |extra: &[&str]| {
        let output = w.reconcile_command(extra).output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    };
    let dry = tokio::task::block_in_place(|| reconcile(&["--dry-run"]));
    assert!(
        dry.contains("u_drift: pro active") && dry.contains("-> pro past_due"),
        "{dry}"
    );
    assert_eq!(
        plan_ids(&w.customer("u_drift").await)[0].1,
        "active",
        "a dry run changes nothing"
    );

    let out = tokio::task::block_in_place(|| reconcile(&["--customer", "u_drift"]));
    assert!(out.contains("1 plans changed"), "{out}");
    assert_eq!(
        plan_ids(&w.customer("u_drift").await),
        [("pro".to_owned(), "past_due".to_owned())]
    );
    let again = tokio::task::block_in_place(|| reconcile(&[]));
    assert!(again.contains("0 plans changed"), "{again}");
}

#[tokio::test]
async fn upgrades_switch_at_once_and_downgrades_wait_for_the_renewal() {
    let w = World::new().await;
    w.paying_customer("u_move").await;
    let first = w.attach("u_move", "pro").await;
    w.drain().await;
    let subscription =
        w.attach_state(first["id"].as_str().unwrap()).await["stripe_subscription_id"]
            .as_str()
            .unwrap()
            .to_owned();

    // Upgrade: the same subscription, now on business, prorated, provisioned at once.
    let up = w.attach("u_move", "business").await;
    w.drain().await;
    assert_eq!(
        w.attach_state(up["id"].as_str().unwrap()).await["state"],
        "active"
    );
    let c = w.customer("u_move").await;
    assert_eq!(plan_ids(&c), [("business".to_owned(), "active".to_owned())]);
    assert_eq!(
        c["products"][0]["stripe_subscription_id"],
        subscription.as_str()
    );
    assert_eq!(c["balances"][0]["included"], 10_000);
    let swap = w
        .stripe
        .requests()
        .into_iter()
        .rfind(|r| r.method == "POST" && r.path == format!("/v1/subscriptions/{subscription}"))
        .unwrap();
    assert!(
        swap.form.contains(&(
            "proration_behavior".to_owned(),
            "create_prorations".to_owned()
        )),
        "{:?}",
        swap.form
    );
    assert_eq!(w.stripe.subscriptions().len(), 1);

    // Downgrade: billed from the next period; business stays until the renewal.
    let down = w.attach("u_move", "pro").await;
    w.drain().await;
    assert_eq!(
        w.attach_state(down["id"].as_str().unwrap()).await["state"],
        "scheduled"
    );
    let mut plans = plan_ids(&w.customer("u_move").await);
    plans.sort();
    assert_eq!(
        plans,
        [
            ("business".to_owned(), "active".to_owned()),
            ("pro".to_owned(), "scheduled".to_owned())
        ]
    );
    let swap = w
        .stripe
        .requests()
        .into_iter()
        .rfind(|r| r.method == "POST" && r.path == format!("/v1/subscriptions/{subscription}"))
        .unwrap();
    assert!(
        swap.form
            .contains(&("proration_behavior".to_owned(), "none".to_owned())),
        "{:?}",
        swap.form
    );

    // The renewal comes later than the downgrade, by Stripe's clock.
    w.stripe.advance_clock(Duration::from_secs(60));
    let invoice = w.stripe.renew(&subscription).await.unwrap();
    w.stripe.pay_invoice(&invoice).await.unwrap();
    w.drain_retries().await;
    let c = w.customer("u_move").await;
    assert_eq!(
        plan_ids(&c),
        [("pro".to_owned(), "active".to_owned())],
        "{c}"
    );
    assert_eq!(c["balances"][0]["included"], 1000);

    // A late redelivery of the downgrade's own event (pro's price, a minute before the
    // renewal) does not move pro's start back to the downgrade.
    let key = format!("rc-attach-{}-swap", down["id"].as_str().unwrap());
    let swapped = w
        .stripe
        .events()
        .into_iter()
        .find(|e| e["request"]["idempotency_key"] == key.as_str())
        .expect("the downgrade's event");
    let started = c["products"][0]["started_at"].clone();
    w.app.post_event(swapped.to_string().as_bytes()).await;
    w.drain().await;
    let after = w.customer("u_move").await;
    assert_eq!(after["products"][0]["started_at"], started, "{after:#}");
    let started = chrono::DateTime::parse_from_rfc3339(started.as_str().unwrap()).unwrap();
    assert!(
        started.timestamp() > swapped["created"].as_i64().unwrap(),
        "pro started at the renewal, not at the downgrade: {started}"
    );
}

#[tokio::test]
async fn plans_get_stripe_objects_once_per_account() {
    let w = World::new().await;
    w.paying_customer("u_cat1").await;
    w.attach("u_cat1", "pro").await;
    w.drain().await;
    w.paying_customer("u_cat2").await;
    w.attach("u_cat2", "pro").await;
    w.drain().await;
    assert_eq!(
        w.calls("POST", "/v1/products").len(),
        2,
        "created once, then reused"
    );
    let stored: (String, String) = sqlx::query_as(
        "SELECT stripe_price_id, usage_prices->>'messages' FROM catalog_plans WHERE id = 'pro'",
    )
    .fetch_one(&w.app.pool)
    .await
    .unwrap();
    let price = w.stripe.subscriptions()[0]["items"]["data"][0]["price"]["id"].clone();
    assert_eq!(price, stored.0.as_str());

    // Objects stored for another Stripe account are not used: they are created again here.
    sqlx::query("UPDATE catalog_plans SET stripe_account = 'another-account'")
        .execute(&w.app.pool)
        .await
        .unwrap();
    w.paying_customer("u_cat3").await;
    w.attach("u_cat3", "pro").await;
    w.drain().await;
    assert_eq!(w.calls("POST", "/v1/products").len(), 4);
    let account: String =
        sqlx::query_scalar("SELECT stripe_account FROM catalog_plans WHERE id = 'pro'")
            .fetch_one(&w.app.pool)
            .await
            .unwrap();
    assert_ne!(account, "another-account");
}

#[tokio::test]
async fn a_downgrade_starts_at_its_renewal_whatever_arrives_late() {
    let w = World::new().await;
    w.paying_customer("u_down").await;
    let first = w.attach("u_down", "business").await;
    w.drain().await;
    let subscription =
        w.attach_state(first["id"].as_str().unwrap()).await["stripe_subscription_id"]
            .as_str()
            .unwrap()
            .to_owned();
    w.stripe.advance_clock(Duration::from_secs(60));
    // The downgrade's webhook is lost for now; it arrives after the renewal's.
    for _ in 0..20 {
        w.drain().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    w.stripe.set_delivery(fake_stripe::Delivery::Drop);
    let down = w.attach("u_down", "pro").await;
    w.drain().await;
    w.stripe.set_delivery(fake_stripe::Delivery::Deliver);
    w.stripe.advance_clock(Duration::from_secs(60));
    let invoice = w.stripe.renew(&subscription).await.unwrap();
    w.stripe.pay_invoice(&invoice).await.unwrap();
    let mut c = Value::Null;
    for _ in 0..50 {
        w.drain().await;
        c = w.customer("u_down").await;
        if plan_ids(&c) == [("pro".to_owned(), "active".to_owned())] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        plan_ids(&c),
        [("pro".to_owned(), "active".to_owned())],
        "{c:#}"
    );
    let started = c["products"][0]["started_at"].clone();
    // The downgrade's own event (pro's price, before the renewal), delivered late.
    let key = format!("rc-attach-{}-swap", down["id"].as_str().unwrap());
    let swapped = w
        .stripe
        .events()
        .into_iter()
        .find(|e| e["request"]["idempotency_key"] == key.as_str())
        .expect("the downgrade's event");
    w.app.post_event(swapped.to_string().as_bytes()).await;
    w.drain().await;
    let after = w.customer("u_down").await;
    assert_eq!(after["products"][0]["started_at"], started, "{after:#}");
    let started = chrono::DateTime::parse_from_rfc3339(started.as_str().unwrap()).unwrap();
    assert!(
        started.timestamp() > swapped["created"].as_i64().unwrap(),
        "pro started at the renewal, not at the downgrade: {started}"
    );
    let ended = &after["ended_products"][0];
    assert_eq!(ended["plan_id"], "business");
    assert_eq!(ended["ended_at"], after["products"][0]["started_at"]);
}
