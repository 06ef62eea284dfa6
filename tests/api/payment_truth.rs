//! Nothing is granted before it is paid, and the customer learns what to do: each payment
//! path walked end to end against the fake Stripe (3-D Secure, declines, bank debits, renewal
//! failures, pauses, `cancel_at`), with the customer view, the attach and `check` asserted at
//! every step.

use std::time::Duration;

use fake_stripe::PaymentMethodKind;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use stripe_reconciler::access::PastDueAccess;

use crate::helpers::*;
use crate::stripe_side::World;

/// A customer of ours with a Stripe customer whose default payment method is of `kind`.
async fn customer_paying_with(w: &World, id: &str, kind: PaymentMethodKind) -> String {
    let stripe_id = w.paying_customer(id).await;
    w.stripe.set_default_payment_method_kind(&stripe_id, kind);
    stripe_id
}

/// A customer of ours with a Stripe customer and no payment method (attaches check out).
async fn customer_without_payment_method(w: &World, id: &str) {
    let (status, _) = w
        .app
        .create_customer(json!({"id": id, "create_in_stripe": true}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    w.drain().await;
}

fn plans(view: &Value) -> Vec<(&str, &str)> {
    view["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["plan_id"].as_str().unwrap(),
                p["status"].as_str().unwrap(),
            )
        })
        .collect()
}

fn balance<'v>(view: &'v Value, feature: &str) -> &'v Value {
    view["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["feature_id"] == feature)
        .unwrap_or(&Value::Null)
}

/// `POST /v1/check` for one message.
async fn check(w: &World, customer: &str) -> Value {
    let body = json!({"customer_id": customer, "feature_id": "messages"});
    let (status, answer) = w.app.api(Method::POST, "/v1/check", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

/// The invoices of `subscription` in the fake, oldest first.
fn invoices_of(w: &World, subscription: &str) -> Vec<Value> {
    w.stripe
        .invoices()
        .into_iter()
        .filter(|i| i["parent"]["subscription_details"]["subscription"] == subscription)
        .collect()
}

fn only_subscription(w: &World, stripe_customer: &str) -> String {
    let subs: Vec<Value> = w
        .stripe
        .subscriptions()
        .into_iter()
        .filter(|s| s["customer"] == stripe_customer)
        .collect();
    assert_eq!(subs.len(), 1, "{subs:?}");
    subs[0]["id"].as_str().unwrap().to_owned()
}

async fn stripe_id(w: &World, customer: &str) -> String {
    w.customer(customer).await["stripe_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn three_d_secure_asks_the_customer_then_paying_grants_the_plan() {
    let w = World::with(|s| s.stripe.attach_wait_ms = 10_000).await;
    let stripe_customer = customer_paying_with(&w, "u_3ds", PaymentMethodKind::ThreeDSecure).await;

    // The caller of POST /v1/attach learns at once what the customer must do, and where
    // (the POST waits for the job, which the drain runs meanwhile).
    // Drained until the POST answers: a single drain after a fixed pause could run before
    // the job was queued on a loaded machine, and the POST then waited in vain.
    let answered = std::sync::atomic::AtomicBool::new(false);
    let (answer, ()) = tokio::join!(
        async {
            let answer = w.attach("u_3ds", "pro").await;
            answered.store(true, std::sync::atomic::Ordering::Relaxed);
            answer
        },
        async {
            while !answered.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(50)).await;
                w.drain().await;
            }
        }
    );
    assert_eq!(answer["state"], "requires_action", "{answer}");
    let subscription = only_subscription(&w, &stripe_customer);
    let invoice = invoices_of(&w, &subscription).remove(0);
    assert_eq!(answer["action_url"], invoice["hosted_invoice_url"]);
    assert!(
        answer["action_url"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("authentication_required"),
        "{answer}"
    );
    w.drain().await;

    // Nothing granted: the plan shows incomplete, the free plan stays, no pro balance.
    let view = w.customer("u_3ds").await;
    assert_eq!(
        plans(&view),
        [("free", "active"), ("pro", "incomplete")],
        "{view}"
    );
    assert_eq!(balance(&view, "messages")["included"], 100, "{view}");
    let attach = w.attach_state(answer["id"].as_str().unwrap()).await;
    assert_eq!(
        attach["state"], "requires_action",
        "still, after the webhooks"
    );

    // The customer confirms on the hosted page: paid, the plan is theirs.
    w.stripe
        .pay_invoice(invoice["id"].as_str().unwrap())
        .await
        .unwrap();
    w.drain().await;
    let view = w.customer("u_3ds").await;
    assert_eq!(plans(&view), [("pro", "active")], "{view}");
    assert_eq!(balance(&view, "messages")["included"], 1000);
    let attach = w.attach_state(answer["id"].as_str().unwrap()).await;
    assert_eq!(attach["state"], "active", "{attach}");
    assert_eq!(attach["error"], Value::Null);
}

#[tokio::test]
async fn three_d_secure_abandoned_expires_without_ever_granting() {
    let w = World::new().await;
    let stripe_customer = customer_paying_with(&w, "u_gone", PaymentMethodKind::ThreeDSecure).await;
    let answer = w.attach("u_gone", "pro").await;
    w.drain().await;
    let subscription = only_subscription(&w, &stripe_customer);

    w.stripe.expire_incomplete(&subscription).await.unwrap();
    w.drain().await;
    let view = w.customer("u_gone").await;
    assert_eq!(plans(&view), [("free", "active")], "{view}");
    assert_eq!(balance(&view, "messages")["included"], 100);
    assert_eq!(
        view["payment_due"],
        json!([]),
        "a voided invoice is not due"
    );
    let attach = w.attach_state(answer["id"].as_str().unwrap()).await;
    assert_eq!(attach["state"], "expired", "{attach}");
    assert!(
        attach["error"]
            .as_str()
            .unwrap()
            .contains("incomplete_expired"),
        "{attach}"
    );
    // The plan is free for a new attach.
    let again = w.attach("u_gone", "pro").await;
    assert_eq!(again["duplicate"], false, "{again}");
}

#[tokio::test]
async fn a_declined_first_payment_says_why_and_where_to_pay_instead() {
    let w = World::new().await;
    customer_paying_with(&w, "u_declined", PaymentMethodKind::Declining).await;
    let answer = w.attach("u_declined", "pro").await;
    w.drain().await;
    let attach = w.attach_state(answer["id"].as_str().unwrap()).await;
    assert_eq!(attach["state"], "requires_action", "{attach}");
    assert_eq!(
        attach["error"], "payment_failed: Your card was declined.",
        "{attach}"
    );
    assert!(attach["action_url"].as_str().is_some(), "{attach}");
    let view = w.customer("u_declined").await;
    assert_eq!(
        plans(&view),
        [("free", "active"), ("pro", "incomplete")],
        "{view}"
    );
    assert_eq!(check(&w, "u_declined").await["balance"], 100);
    // A second attach while it waits hands out the same page, creating nothing.
    let again = w.attach("u_declined", "pro").await;
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["action_url"], attach["action_url"]);
}

#[tokio::test]
async fn a_bank_debit_on_the_direct_path_waits_then_grants_when_it_clears() {
    let w = World::new().await;
    let stripe_customer = customer_paying_with(&w, "u_sepa", PaymentMethodKind::AsyncDebit).await;
    let answer = w.attach("u_sepa", "pro").await;
    w.drain().await;
    let attach = w.attach_state(answer["id"].as_str().unwrap()).await;
    assert_eq!(attach["state"], "awaiting_payment", "{attach}");
    assert_eq!(
        plans(&w.customer("u_sepa").await),
        [("free", "active"), ("pro", "incomplete")]
    );

    let subscription = only_subscription(&w, &stripe_customer);
    let invoice = invoices_of(&w, &subscription).remove(0);
    w.stripe
        .settle_async_payment(invoice["id"].as_str().unwrap(), true)
        .await
        .unwrap();
    w.drain().await;
    assert_eq!(plans(&w.customer("u_sepa").await), [("pro", "active")]);
    let attach = w.attach_state(answer["id"].as_str().unwrap()).await;
    assert_eq!(attach["state"], "active", "{attach}");
}

/// An attach that checks out, paid with a bank debit: `(attach id, subscription, invoice)`.
async fn async_checkout(w: &World, customer: &str) -> (String, String, String) {
    customer_without_payment_method(w, customer).await;
    let answer = w.attach(customer, "pro").await;
    w.drain().await;
    let id = answer["id"].as_str().unwrap().to_owned();
    let attach = w.attach_state(&id).await;
    assert_eq!(attach["state"], "checkout_required", "{attach}");
    let session = w
        .stripe
        .checkout_sessions()
        .into_iter()
        .find(|s| s["metadata"]["attach_id"] == id.as_str())
        .unwrap();
    w.stripe
        .complete_checkout_with(
            session["id"].as_str().unwrap(),
            PaymentMethodKind::AsyncDebit,
        )
        .await
        .unwrap();
    w.drain().await;
    // Completed, unpaid: nothing granted yet.
    let attach = w.attach_state(&id).await;
    assert_eq!(attach["state"], "awaiting_payment", "{attach}");
    let view = w.customer(customer).await;
    assert_eq!(
        plans(&view),
        [("free", "active"), ("pro", "incomplete")],
        "{view}"
    );
    assert_eq!(balance(&view, "messages")["included"], 100);
    let subscription = only_subscription(w, &stripe_id(w, customer).await);
    let invoice = invoices_of(w, &subscription).remove(0)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, subscription, invoice)
}

#[tokio::test]
async fn an_async_checkout_grants_only_when_the_payment_succeeds() {
    let w = World::new().await;
    let (attach, _, invoice) = async_checkout(&w, "u_async_ok").await;
    w.stripe.settle_async_payment(&invoice, true).await.unwrap();
    w.drain().await;
    let view = w.customer("u_async_ok").await;
    assert_eq!(plans(&view), [("pro", "active")], "{view}");
    assert_eq!(balance(&view, "messages")["included"], 1000);
    assert_eq!(w.attach_state(&attach).await["state"], "completed");
}

#[tokio::test]
async fn an_async_checkout_whose_payment_fails_marks_the_attach_failed() {
    let w = World::new().await;
    let (attach, subscription, invoice) = async_checkout(&w, "u_async_ko").await;
    w.stripe
        .settle_async_payment(&invoice, false)
        .await
        .unwrap();
    w.drain().await;
    let state = w.attach_state(&attach).await;
    assert_eq!(state["state"], "failed", "{state}");
    assert!(
        state["error"]
            .as_str()
            .unwrap()
            .contains("async_payment_failed"),
        "{state}"
    );
    let view = w.customer("u_async_ko").await;
    assert_eq!(balance(&view, "messages")["included"], 100, "{view}");
    assert_eq!(check(&w, "u_async_ko").await["balance"], 100);
    // Stripe gives up after 23 hours: the plan is gone, the attach stays failed.
    w.stripe.expire_incomplete(&subscription).await.unwrap();
    w.drain().await;
    assert_eq!(plans(&w.customer("u_async_ko").await), [("free", "active")]);
    assert_eq!(w.attach_state(&attach).await["state"], "failed");
}

/// A customer on pro, paid by card: `(stripe customer, subscription)`.
async fn on_pro(w: &World, customer: &str) -> (String, String) {
    let stripe_customer = w.paying_customer(customer).await;
    w.attach(customer, "pro").await;
    w.drain().await;
    assert_eq!(plans(&w.customer(customer).await), [("pro", "active")]);
    let subscription = only_subscription(w, &stripe_customer);
    (stripe_customer, subscription)
}

#[tokio::test]
async fn a_failed_renewal_shows_what_is_due_and_recovery_clears_it() {
    let w = World::new().await;
    let (_, subscription) = on_pro(&w, "u_renew").await;
    w.stripe.advance_clock(Duration::from_secs(30 * 86_400));
    let invoice = w.stripe.renew(&subscription).await.unwrap();
    w.stripe.fail_invoice_payment(&invoice).await.unwrap();
    w.drain().await;

    let view = w.customer("u_renew").await;
    assert_eq!(plans(&view), [("pro", "past_due")], "{view}");
    let due = view["payment_due"].as_array().unwrap();
    assert_eq!(due.len(), 1, "{view}");
    assert_eq!(due[0]["stripe_id"], invoice.as_str());
    assert_eq!(due[0]["plan_status"], "past_due");
    assert!(due[0]["hosted_invoice_url"].as_str().is_some(), "{view}");
    // The default policy keeps access while Stripe retries...
    assert_eq!(check(&w, "u_renew").await["allowed"], true);

    // ...and suspends it when Stripe gives up; the balance is kept.
    w.stripe.advance_clock(Duration::from_secs(86_400));
    w.stripe.mark_unpaid(&subscription).await.unwrap();
    w.drain().await;
    let view = w.customer("u_renew").await;
    assert_eq!(plans(&view), [("pro", "unpaid")], "{view}");
    assert_eq!(balance(&view, "messages")["included"], 1000);
    assert_eq!(balance(&view, "messages")["suspended"], true);
    let refused = check(&w, "u_renew").await;
    assert_eq!(refused["allowed"], false, "{refused}");
    assert_eq!(refused["reason"], "plan_suspended");

    // The customer pays on the hosted page: everything clears.
    w.stripe.advance_clock(Duration::from_secs(86_400));
    w.stripe.pay_invoice(&invoice).await.unwrap();
    w.drain().await;
    let view = w.customer("u_renew").await;
    assert_eq!(plans(&view), [("pro", "active")], "{view}");
    assert_eq!(view["payment_due"], json!([]), "{view}");
    assert_eq!(balance(&view, "messages")["suspended"], false);
    assert_eq!(check(&w, "u_renew").await["allowed"], true);
}

#[tokio::test]
async fn with_no_past_due_access_the_first_failed_renewal_suspends() {
    let w = World::with(|s| s.billing.past_due_access = PastDueAccess::None).await;
    let (_, subscription) = on_pro(&w, "u_strict").await;
    w.stripe.advance_clock(Duration::from_secs(30 * 86_400));
    let invoice = w.stripe.renew(&subscription).await.unwrap();
    w.stripe.fail_invoice_payment(&invoice).await.unwrap();
    w.drain().await;
    assert_eq!(plans(&w.customer("u_strict").await), [("pro", "past_due")]);
    let refused = check(&w, "u_strict").await;
    assert_eq!(refused["allowed"], false, "{refused}");
    assert_eq!(refused["reason"], "plan_suspended");
}

#[tokio::test]
async fn a_paused_plan_keeps_its_balance_but_allows_nothing_until_resumed() {
    let w = World::new().await;
    let (_, subscription) = on_pro(&w, "u_pause").await;
    let track = json!({"customer_id": "u_pause", "feature_id": "messages", "value": 30});
    let (status, _) = w.app.api(Method::POST, "/v1/track", Some(track)).await;
    assert_eq!(status, StatusCode::OK);

    w.stripe.advance_clock(Duration::from_secs(60));
    w.stripe.pause_subscription(&subscription).await.unwrap();
    w.drain().await;
    let view = w.customer("u_pause").await;
    assert_eq!(
        plans(&view),
        [("pro", "paused")],
        "the free plan does not come back: {view}"
    );
    assert_eq!(balance(&view, "messages")["used"], 30, "{view}");
    assert_eq!(balance(&view, "messages")["suspended"], true);
    let refused = check(&w, "u_pause").await;
    assert_eq!(refused["allowed"], false);
    assert_eq!(refused["reason"], "plan_suspended");

    w.stripe.advance_clock(Duration::from_secs(60));
    w.stripe.resume_subscription(&subscription).await.unwrap();
    w.drain().await;
    let view = w.customer("u_pause").await;
    assert_eq!(plans(&view), [("pro", "active")], "{view}");
    assert_eq!(balance(&view, "messages")["suspended"], false);
    assert_eq!(check(&w, "u_pause").await["allowed"], true);
}

#[tokio::test]
async fn cancel_at_a_date_shows_on_the_plan_and_ends_it_when_stripe_deletes_it() {
    let w = World::new().await;
    let (_, subscription) = on_pro(&w, "u_date").await;
    let at = chrono::Utc::now().timestamp() + 10 * 86_400;
    w.stripe.set_cancel_at(&subscription, at).await.unwrap();
    w.drain().await;
    let view = w.customer("u_date").await;
    assert_eq!(plans(&view), [("pro", "active")], "{view}");
    let cancel_at = chrono::DateTime::from_timestamp(at, 0).unwrap();
    let shown: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(view["products"][0]["cancel_at"].clone()).unwrap();
    assert_eq!(shown, cancel_at, "{view}");
    assert_eq!(view["products"][0]["cancel_at_period_end"], false);

    w.stripe
        .advance_clock(Duration::from_secs(10 * 86_400 + 60));
    w.stripe.cancel_subscription(&subscription).await.unwrap();
    w.drain().await;
    assert_eq!(plans(&w.customer("u_date").await), [("free", "active")]);
}

/// A Stripe-shaped subscription event of customer `u_policy` on pro.
fn subscription_event(n: u32, event_type: &str, created: i64, status: &str) -> Vec<u8> {
    let subscription = json!({
        "id": "sub_policy", "object": "subscription", "customer": "cus_policy",
        "status": status, "cancel_at_period_end": false, "cancel_at": null,
        "canceled_at": null, "ended_at": null, "start_date": created,
        "metadata": {"customer_id": "u_policy"},
        "items": {"object": "list", "data": [{
            "id": "si_policy", "object": "subscription_item", "quantity": 1,
            "current_period_start": created, "current_period_end": created + 30 * 86_400,
            "price": {"id": "price_policy", "object": "price", "metadata": {"plan_id": "pro"}}
        }]}
    });
    envelope(
        &format!("evt_policy_{n}"),
        event_type,
        created,
        subscription,
    )
}

#[tokio::test]
async fn a_changed_past_due_policy_applies_at_the_next_start() {
    let app = TestApp::spawn().await;
    let (status, _) = app.create_customer(json!({"id": "u_policy"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let t = 1_795_000_000;
    for body in [
        subscription_event(1, "customer.subscription.created", t, "active"),
        subscription_event(
            2,
            "customer.subscription.updated",
            t + 40 * 86_400,
            "unpaid",
        ),
    ] {
        assert_eq!(app.post_event(&body).await.0, StatusCode::OK);
        app.engine.run_until_idle().await.unwrap();
    }
    let check = json!({"customer_id": "u_policy", "feature_id": "messages"});
    let refused = app
        .api(Method::POST, "/v1/check", Some(check.clone()))
        .await
        .1;
    assert_eq!(refused["allowed"], false, "{refused}");
    assert_eq!(refused["reason"], "plan_suspended");

    // Restarted with access until the subscription is canceled: the unpaid customer is
    // served again at once, without waiting for an event.
    app.shutdown.cancel();
    app.handle.await.unwrap().unwrap();
    let mut settings = test_settings(&app.database_url);
    settings.billing.past_due_access = PastDueAccess::UntilCanceled;
    let again =
        TestApp::start_with(settings, app.pool.clone(), app.database_url.clone(), None).await;
    let allowed = again.api(Method::POST, "/v1/check", Some(check)).await.1;
    assert_eq!(allowed["allowed"], true, "{allowed}");
    assert_eq!(allowed["balance"], 1000);
}

#[tokio::test]
async fn a_paid_first_invoice_finishes_the_attach_before_its_subscription_says_so() {
    // `invoice.paid` alone (the subscription's own update has not come): the invoice applier
    // finishes the attach that waited on the first payment and writes the payment's timeline
    // entry, in the statement that records the invoice.
    let w = World::new().await;
    let stripe_customer =
        customer_paying_with(&w, "u_paid_first", PaymentMethodKind::AsyncDebit).await;
    let answer = w.attach("u_paid_first", "pro").await;
    w.drain().await;
    let id = answer["id"].as_str().unwrap();
    assert_eq!(w.attach_state(id).await["state"], "awaiting_payment");
    let subscription = only_subscription(&w, &stripe_customer);
    let mut invoice = invoices_of(&w, &subscription).remove(0);
    invoice["status"] = json!("paid");
    let paid = envelope("evt_paid_first", "invoice.paid", now(), invoice);
    let (status, _) = w.app.post_event(&paid).await;
    assert_eq!(status, StatusCode::OK);
    w.drain().await;

    assert_eq!(w.attach_state(id).await["state"], "active");
    assert_eq!(
        plans(&w.customer("u_paid_first").await),
        [("free", "active"), ("pro", "incomplete")],
        "the subscription's state is its own events'"
    );
    let entries = w
        .app
        .count("SELECT count(*) FROM activity WHERE kind = 'invoice.paid' AND source = 'evt_paid_first'")
        .await;
    assert_eq!(entries, 1, "the payment is on the timeline once");
}
