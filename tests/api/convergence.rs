//! Any delivery order, any duplicates, any re-application: the store ends where in-order
//! delivery ends. Each scenario runs a setup in order, then delivers its tail shuffled, with
//! redeliveries and forced re-applications mixed in, draining after each delivery as if the
//! events arrived far apart; the customer's view must equal the in-order one.
//!
//! Every shuffled run forces 1 to 4 re-applications, at random steps, each of an event OLDER
//! (earlier in the scenario: a setup event, or a tail event before the newest one applied so
//! far) than one already applied: the replayed event meets newer state. Each is checked to be
//! queued and applied again (its `attempts` grow).

use std::sync::atomic::{AtomicU32, Ordering};

use hyper::{Method, StatusCode};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use stripe_reconciler::store::{attaches, customers};

use crate::helpers::*;

pub(crate) const P1: (i64, i64) = (1_795_000_000, 1_797_592_000);
const P2: (i64, i64) = (1_797_592_000, 1_800_184_000);
/// A day, in seconds.
const DAY: i64 = 86_400;

/// Ids unique to one run of a scenario, so runs share one database.
pub(crate) struct Ids {
    pub(crate) run: String,
}

impl Ids {
    pub(crate) fn new(scenario: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        Self {
            run: format!("{scenario}{}", NEXT.fetch_add(1, Ordering::Relaxed)),
        }
    }
    pub(crate) fn customer(&self) -> String {
        format!("user_{}", self.run)
    }
    fn stripe_customer(&self) -> String {
        format!("cus_{}", self.run)
    }
    fn sub(&self) -> String {
        format!("sub_{}", self.run)
    }
    fn attach(&self) -> String {
        format!("att_{}", self.run)
    }
    fn event_id(&self, n: usize) -> String {
        format!("evt_{}_{n}", self.run)
    }

    pub(crate) fn envelope(
        &self,
        n: usize,
        event_type: &str,
        created: i64,
        object: Value,
        previous: Option<Value>,
    ) -> Vec<u8> {
        let mut data = json!({ "object": object });
        if let Some(previous) = previous {
            data["previous_attributes"] = previous;
        }
        serde_json::to_vec(&json!({
            "id": self.event_id(n), "object": "event", "api_version": "2026-09-30.endive",
            "created": created, "livemode": false, "pending_webhooks": 1,
            "request": {"id": null, "idempotency_key": null}, "type": event_type, "data": data,
        }))
        .unwrap()
    }

    pub(crate) fn subscription(
        &self,
        status: &str,
        plan: &str,
        period: (i64, i64),
        cancel: bool,
        ended: Option<i64>,
    ) -> Value {
        json!({
            "id": self.sub(), "object": "subscription", "customer": self.stripe_customer(),
            "status": status, "cancel_at_period_end": cancel,
            "cancel_at": if cancel { Some(period.1) } else { None },
            "canceled_at": if cancel || ended.is_some() { Some(period.0 + 100) } else { None },
            "ended_at": ended, "start_date": P1.0,
            "metadata": { "customer_id": self.customer() },
            "items": { "object": "list", "data": [{
                "id": format!("si_{}", self.run), "object": "subscription_item", "quantity": 1,
                "current_period_start": period.0, "current_period_end": period.1,
                "price": { "id": format!("price_{plan}"), "object": "price", "metadata": { "plan_id": plan } }
            }]}
        })
    }

    fn invoice(&self, n: u32, status: &str, reason: &str, plan: &str, period: (i64, i64)) -> Value {
        json!({
            "id": format!("in_{}_{n}", self.run), "object": "invoice", "customer": self.stripe_customer(),
            "status": status, "billing_reason": reason, "total": 2000, "currency": "usd",
            "hosted_invoice_url": format!("https://invoice.example/{}/{n}", self.run),
            "created": period.0, "period_start": period.0, "period_end": period.0,
            "parent": { "type": "subscription_details", "subscription_details": {
                "subscription": self.sub(), "metadata": { "customer_id": self.customer(), "plan_id": plan } } },
            "lines": { "object": "list", "data": [{
                "id": format!("il_{}_{n}", self.run), "object": "line_item",
                "period": { "start": period.0, "end": period.1 }, "metadata": { "plan_id": plan },
                "pricing": { "type": "price_details", "price_details": { "price": format!("price_{plan}") } }
            }]}
        })
    }

    fn checkout(&self, plan: &str) -> Value {
        json!({
            "id": format!("cs_{}", self.run), "object": "checkout.session", "mode": "subscription",
            "status": "complete", "payment_status": "paid",
            "customer": self.stripe_customer(), "subscription": self.sub(),
            "metadata": { "attach_id": self.attach(), "customer_id": self.customer(), "plan_id": plan }
        })
    }
}

/// A scenario: events applied in order first, then the tail whose order is under test.
pub(crate) struct Scenario {
    pub(crate) setup: Vec<Vec<u8>>,
    pub(crate) tail: Vec<Vec<u8>>,
    usage_before_tail: i64,
    /// Where the attach stands before the events: as recorded (`pending`), or as the attach
    /// job or checkout left it.
    attach: AttachStart,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum AttachStart {
    Pending,
    /// A direct subscription whose first payment is not made yet.
    AwaitingPayment,
    /// A Checkout Session opened for it.
    CheckoutRequired,
}

pub(crate) fn scenario(name: &str, ids: &Ids) -> Scenario {
    let sub = |n, t, status, plan, period, cancel, ended| {
        let ty = match (n, ended) {
            (0, _) => "customer.subscription.created",
            (_, Some(_)) => "customer.subscription.deleted",
            _ => "customer.subscription.updated",
        };
        ids.envelope(
            n,
            ty,
            t,
            ids.subscription(status, plan, period, cancel, ended),
            None,
        )
    };
    let created = || sub(0, P1.0 + 2, "active", "pro", P1, false, None);
    let incomplete = || sub(0, P1.0 + 2, "incomplete", "pro", P1, false, None);
    // 23 hours without the first payment.
    let incomplete_expired = |n| {
        let s = ids.subscription("incomplete_expired", "pro", P1, false, Some(P1.0 + DAY));
        ids.envelope(n, "customer.subscription.updated", P1.0 + DAY, s, None)
    };
    let first_invoice = |n, ty, t, status| {
        let invoice = ids.invoice(1, status, "subscription_create", "pro", P1);
        ids.envelope(n, ty, t, invoice, None)
    };
    let checkout = |n, ty, t, payment_status: &str| {
        let mut session = ids.checkout("pro");
        session["payment_status"] = json!(payment_status);
        ids.envelope(n, ty, t, session, None)
    };
    let typed = |n, ty, t, status| {
        let s = ids.subscription(status, "pro", P1, false, None);
        ids.envelope(n, ty, t, s, None)
    };
    match name {
        "checkout" => Scenario {
            setup: vec![],
            tail: vec![
                ids.envelope(
                    10,
                    "checkout.session.completed",
                    P1.0 + 5,
                    ids.checkout("pro"),
                    None,
                ),
                created(),
                ids.envelope(
                    11,
                    "invoice.paid",
                    P1.0 + 4,
                    ids.invoice(1, "paid", "subscription_create", "pro", P1),
                    None,
                ),
            ],
            usage_before_tail: 0,
            attach: AttachStart::Pending,
        },
        "renewal" => Scenario {
            setup: vec![created()],
            tail: vec![
                ids.envelope(
                    10,
                    "invoice.created",
                    P2.0 + 2,
                    ids.invoice(2, "draft", "subscription_cycle", "pro", P2),
                    None,
                ),
                sub(1, P2.0 + 3, "active", "pro", P2, false, None),
                ids.envelope(
                    11,
                    "invoice.paid",
                    P2.0 + 4,
                    ids.invoice(2, "paid", "subscription_cycle", "pro", P2),
                    None,
                ),
            ],
            usage_before_tail: 300,
            attach: AttachStart::Pending,
        },
        "recovery" => Scenario {
            setup: vec![created()],
            tail: vec![
                ids.envelope(
                    10,
                    "invoice.payment_failed",
                    P2.0 + 5,
                    ids.invoice(2, "open", "subscription_cycle", "pro", P2),
                    None,
                ),
                sub(1, P2.0 + 6, "past_due", "pro", P2, false, None),
                ids.envelope(
                    11,
                    "invoice.paid",
                    P2.0 + 90,
                    ids.invoice(2, "paid", "subscription_cycle", "pro", P2),
                    None,
                ),
                sub(2, P2.0 + 91, "active", "pro", P2, false, None),
            ],
            usage_before_tail: 40,
            attach: AttachStart::Pending,
        },
        "cancel" => Scenario {
            setup: vec![created()],
            tail: vec![
                sub(1, P1.0 + 500, "active", "pro", P1, true, None),
                sub(2, P1.1 + 2, "canceled", "pro", P1, true, Some(P1.1)),
            ],
            usage_before_tail: 7,
            attach: AttachStart::Pending,
        },
        "upgrade" => Scenario {
            setup: vec![],
            tail: vec![
                created(),
                sub(1, P1.0 + 900, "active", "business", P1, false, None),
                ids.envelope(
                    10,
                    "invoice.paid",
                    P1.0 + 901,
                    ids.invoice(3, "paid", "subscription_update", "business", P1),
                    None,
                ),
            ],
            usage_before_tail: 12,
            attach: AttachStart::Pending,
        },
        "three_d_secure" => Scenario {
            setup: vec![],
            tail: vec![
                incomplete(),
                first_invoice(10, "invoice.payment_action_required", P1.0 + 3, "open"),
                sub(1, P1.0 + 60, "active", "pro", P1, false, None),
                first_invoice(11, "invoice.paid", P1.0 + 61, "paid"),
            ],
            usage_before_tail: 0,
            attach: AttachStart::AwaitingPayment,
        },
        "abandoned" => Scenario {
            setup: vec![],
            tail: vec![
                incomplete(),
                first_invoice(10, "invoice.payment_action_required", P1.0 + 3, "open"),
                incomplete_expired(1),
                first_invoice(11, "invoice.voided", P1.0 + DAY, "void"),
            ],
            usage_before_tail: 0,
            attach: AttachStart::AwaitingPayment,
        },
        "async_paid" => Scenario {
            setup: vec![],
            tail: vec![
                incomplete(),
                checkout(10, "checkout.session.completed", P1.0 + 3, "unpaid"),
                sub(1, P1.0 + 200, "active", "pro", P1, false, None),
                first_invoice(11, "invoice.paid", P1.0 + 200, "paid"),
                checkout(
                    12,
                    "checkout.session.async_payment_succeeded",
                    P1.0 + 200,
                    "paid",
                ),
            ],
            usage_before_tail: 0,
            attach: AttachStart::CheckoutRequired,
        },
        "async_failed" => Scenario {
            setup: vec![],
            tail: vec![
                incomplete(),
                checkout(10, "checkout.session.completed", P1.0 + 3, "unpaid"),
                first_invoice(11, "invoice.payment_failed", P1.0 + 200, "open"),
                checkout(
                    12,
                    "checkout.session.async_payment_failed",
                    P1.0 + 200,
                    "unpaid",
                ),
                incomplete_expired(1),
            ],
            usage_before_tail: 0,
            attach: AttachStart::CheckoutRequired,
        },
        "unpaid" => Scenario {
            setup: vec![created()],
            tail: vec![
                ids.envelope(
                    10,
                    "invoice.payment_failed",
                    P2.0 + 5,
                    ids.invoice(2, "open", "subscription_cycle", "pro", P2),
                    None,
                ),
                sub(1, P2.0 + 6, "past_due", "pro", P2, false, None),
                sub(2, P2.0 + 10 * DAY, "unpaid", "pro", P2, false, None),
            ],
            usage_before_tail: 40,
            attach: AttachStart::Pending,
        },
        "pause_resume" => Scenario {
            setup: vec![created()],
            tail: vec![
                typed(1, "customer.subscription.paused", P1.0 + 1000, "paused"),
                typed(2, "customer.subscription.updated", P1.0 + 1000, "paused"),
                typed(3, "customer.subscription.resumed", P1.0 + 5000, "active"),
                typed(4, "customer.subscription.updated", P1.0 + 5000, "active"),
            ],
            usage_before_tail: 25,
            attach: AttachStart::Pending,
        },
        "cancel_at" => Scenario {
            setup: vec![created()],
            tail: vec![
                {
                    let mut s = ids.subscription("active", "pro", P1, false, None);
                    s["cancel_at"] = json!(P1.0 + 10 * DAY);
                    s["canceled_at"] = json!(P1.0 + 500);
                    ids.envelope(1, "customer.subscription.updated", P1.0 + 500, s, None)
                },
                {
                    let end = P1.0 + 10 * DAY;
                    let mut s = ids.subscription("canceled", "pro", P1, false, Some(end));
                    s["cancel_at"] = json!(end);
                    ids.envelope(2, "customer.subscription.deleted", end + 1, s, None)
                },
            ],
            usage_before_tail: 3,
            attach: AttachStart::Pending,
        },
        _ => unreachable!(),
    }
}

/// How one run delivers the tail: an order, redeliveries and forced re-applications.
#[derive(Debug, Clone)]
struct Delivery {
    order: Vec<usize>,
    redeliver: Vec<usize>,
    /// (after which delivery, which older event): after delivery `step` (modulo the number
    /// of deliveries), re-apply the event the index picks among those older than the newest
    /// applied so far. When none is older yet, it waits for the next step that has one (or
    /// the end of the tail).
    reapply: Vec<(usize, prop::sample::Index)>,
}

fn delivery(n: usize) -> impl Strategy<Value = Delivery> {
    (
        Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
        prop::collection::vec(0..n, 0..3),
        prop::collection::vec((0..n + 3, any::<prop::sample::Index>()), 1..5),
    )
        .prop_map(|(order, redeliver, reapply)| Delivery {
            order,
            redeliver,
            reapply,
        })
}

/// A stored event to re-apply: a setup event, or a tail event.
#[derive(Clone, Copy)]
enum Older {
    Setup(usize),
    Tail(usize),
}

/// The events older than the newest tail event applied so far: every setup event (all come
/// before the tail), and each applied tail event that comes before that newest one.
fn older_than_newest(setup: usize, applied: &std::collections::BTreeSet<usize>) -> Vec<Older> {
    let mut older: Vec<Older> = (0..setup).map(Older::Setup).collect();
    if let Some(&newest) = applied.last() {
        older.extend(applied.range(..newest).map(|&i| Older::Tail(i)));
    }
    older
}

async fn run(app: &TestApp, name: &str, delivery: &Delivery) -> Value {
    let ids = Ids::new(name);
    let s = scenario(name, &ids);
    prepare(app, &ids, &s).await;
    for body in &s.setup {
        deliver(app, body).await;
    }
    track_before_tail(app, &ids, &s).await;
    let mut sequence: Vec<usize> = delivery.order.clone();
    for (k, &dup) in delivery.redeliver.iter().enumerate() {
        sequence.insert((k * 2 + 1).min(sequence.len()), dup);
    }
    let body = |o: Older| match o {
        Older::Setup(i) => &s.setup[i],
        Older::Tail(i) => &s.tail[i],
    };
    let mut applied = std::collections::BTreeSet::new();
    let mut waiting: Vec<prop::sample::Index> = Vec::new();
    let mut reapplied = 0;
    for (k, &i) in sequence.iter().enumerate() {
        deliver(app, &s.tail[i]).await;
        applied.insert(i);
        waiting.extend(
            delivery
                .reapply
                .iter()
                .filter(|(step, _)| step % sequence.len() == k)
                .map(|(_, pick)| *pick),
        );
        let older = older_than_newest(s.setup.len(), &applied);
        if !older.is_empty() {
            for pick in waiting.drain(..) {
                reapply(app, body(*pick.get(&older))).await;
                reapplied += 1;
            }
        }
    }
    assert!(waiting.is_empty(), "no older event to re-apply at the end");
    assert_eq!(reapplied, delivery.reapply.len(), "re-applications done");
    view(app, &ids).await
}

/// The customer of a run with the scenario's attach where it starts, the free plan begun a
/// day before P1.
pub(crate) async fn prepare(app: &TestApp, ids: &Ids, s: &Scenario) {
    let (status, _) = app.create_customer(json!({"id": ids.customer()})).await;
    assert_eq!(status, StatusCode::CREATED);
    {
        let mut conn = app.pool.acquire().await.unwrap();
        let c = customers::by_id(&mut conn, &ids.customer())
            .await
            .unwrap()
            .unwrap();
        attaches::create(&mut conn, &ids.attach(), &new_attach(c.pk, "pro"))
            .await
            .unwrap();
        let (state, session) = match s.attach {
            AttachStart::Pending => ("pending", None),
            AttachStart::AwaitingPayment => ("awaiting_payment", None),
            AttachStart::CheckoutRequired => ("checkout_required", Some(format!("cs_{}", ids.run))),
        };
        let subscription = (s.attach == AttachStart::AwaitingPayment).then(|| ids.sub());
        // The free plan began a day before P1, so its clock resets do not depend on when the
        // test runs.
        for sql in [
            "UPDATE customer_plans SET started_at = to_timestamp($2) WHERE customer_pk = $1",
            "UPDATE balances SET next_reset_at = to_timestamp($2) + interval '1 month'
             WHERE customer_pk = $1",
        ] {
            sqlx::query(sql)
                .bind(c.pk)
                .bind((P1.0 - DAY) as f64)
                .execute(&mut *conn)
                .await
                .unwrap();
        }
        sqlx::query(
            "UPDATE attaches SET state = $2, checkout_session_id = $3, stripe_subscription_id = $4
             WHERE id = $1",
        )
        .bind(ids.attach())
        .bind(state)
        .bind(session)
        .bind(subscription)
        .execute(&mut *conn)
        .await
        .unwrap();
    }
}

/// The usage the scenario records between its setup and its tail.
pub(crate) async fn track_before_tail(app: &TestApp, ids: &Ids, s: &Scenario) {
    if s.usage_before_tail > 0 {
        let body = json!({"customer_id": ids.customer(), "feature_id": "messages", "value": s.usage_before_tail});
        assert_eq!(
            app.api(Method::POST, "/v1/track", Some(body)).await.0,
            StatusCode::OK
        );
    }
}

/// The customer's view (with the attach, `check`, and each invoice's detail), the run's own
/// ids replaced by `RUN` so runs compare by shape.
pub(crate) async fn view(app: &TestApp, ids: &Ids) -> Value {
    let (status, view) = app
        .api(
            Method::GET,
            &format!("/v1/customers/{}", ids.customer()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut view = view;
    // The attach converges too, and whether check lets the customer use the plan.
    let attach = app
        .api(Method::GET, &format!("/v1/attach/{}", ids.attach()), None)
        .await
        .1;
    view["attach"] = json!({"state": attach["state"], "action_url": attach["action_url"]});
    let check = json!({"customer_id": ids.customer(), "feature_id": "messages"});
    view["check"] = app.api(Method::POST, "/v1/check", Some(check)).await.1;
    // And each invoice with its lines, from the newest event that showed it.
    let mut details = Vec::new();
    for invoice in view["invoices"].as_array().unwrap() {
        let path = format!(
            "/v1/customers/{}/invoices/{}",
            ids.customer(),
            invoice["stripe_id"].as_str().unwrap()
        );
        let (status, detail) = app.api(Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{detail}");
        details.push(detail);
    }
    view["invoice_details"] = details.into();
    // Compare runs by shape: strip the run's own ids.
    let text = view.to_string().replace(&ids.run, "RUN");
    serde_json::from_str(&text).unwrap()
}

async fn deliver(app: &TestApp, body: &[u8]) {
    let (status, answer) = app.post_event(body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    app.engine.run_until_idle().await.unwrap();
}

/// Queues an already stored event again, as `events replay` does, and applies it.
async fn reapply(app: &TestApp, body: &[u8]) {
    let id = serde_json::from_slice::<Value>(body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let attempts = |id: String| async move {
        sqlx::query_as::<_, (String, i32)>("SELECT state, attempts FROM events WHERE id = $1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    let (state, before) = attempts(id.clone()).await;
    assert!(
        matches!(state.as_str(), "applied" | "skipped"),
        "{id} is {state}: re-applied before it finished once"
    );
    let queued = sqlx::query(
        "INSERT INTO jobs (kind, job_key, ordering_key, sort_key)
         SELECT 'stripe_event', id, coalesce(customer_id, object_id), created FROM events WHERE id = $1
         ON CONFLICT (job_key) DO NOTHING",
    )
    .bind(&id)
    .execute(&app.pool)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(queued, 1, "{id} was not queued again");
    app.engine.run_until_idle().await.unwrap();
    // Finished again: applied, or skipped as older than what the store holds now.
    let (again, after) = attempts(id.clone()).await;
    assert!(
        matches!(again.as_str(), "applied" | "skipped") && after == before + 1,
        "{id} was not applied again: {again}, attempts {before} -> {after}"
    );
}

fn check_scenario(name: &'static str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let app = rt.block_on(TestApp::spawn());
    let n = rt.block_on(async { scenario(name, &Ids::new("probe")).tail.len() });
    let in_order = Delivery {
        order: (0..n).collect(),
        redeliver: vec![],
        reapply: vec![],
    };
    let expected = rt.block_on(run(&app, name, &in_order));
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(32);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&delivery(n), |d| {
            let got = rt.block_on(run(&app, name, &d));
            prop_assert_eq!(&got, &expected, "delivery {:?}", d);
            Ok(())
        })
        .unwrap();
    // The in-order state is the right one, not merely a stable one.
    assert_expected(name, &expected);
}

/// When the free plan of every run began (P1 less a day, set by [`run`]).
const FREE_DAY_BEFORE: &str = "2026-11-17T11:06:40+00:00";

fn assert_expected(name: &str, view: &Value) {
    let plans: Vec<(&str, &str)> = view["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["plan_id"].as_str().unwrap(),
                p["status"].as_str().unwrap(),
            )
        })
        .collect();
    let messages = view["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["feature_id"] == "messages")
        .cloned()
        .unwrap_or(Value::Null);
    // The plans that ended: (plan, started_at, ended_at), the latest end first.
    let ended: Vec<(&str, &str, &str)> = view["ended_products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["plan_id"].as_str().unwrap(),
                p["started_at"].as_str().unwrap(),
                p["ended_at"].as_str().unwrap(),
            )
        })
        .collect();
    let invoices: Vec<&str> = view["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    match name {
        "checkout" => {
            assert_eq!(plans, [("pro", "active")], "{view}");
            assert_eq!(messages["included"], 1000);
            assert_eq!(invoices, ["paid"]);
            // Free ended when the subscription was first seen live (P1 + 2 s), not when
            // the checkout completed.
            assert_eq!(
                ended,
                [("free", FREE_DAY_BEFORE, "2026-11-18T11:06:42+00:00")],
                "{view}"
            );
            let pro = &view["products"][0];
            assert_eq!(pro["started_at"], "2026-11-18T11:06:40+00:00", "start_date");
            assert_eq!(
                pro["next_renewal_at"], "2026-12-18T11:06:40+00:00",
                "{view}"
            );
            assert_eq!(
                (&pro["interval"], &pro["amount"], &pro["currency"]),
                (&json!("month"), &json!(2000), &json!("usd"))
            );
        }
        "renewal" => {
            assert_eq!(plans, [("pro", "active")], "{view}");
            assert_eq!(messages["used"], 0, "the renewal reset the usage: {view}");
            assert_eq!(messages["next_reset_at"], "2027-01-17T11:06:40+00:00");
            assert_eq!(invoices, ["paid"]);
        }
        "recovery" => {
            assert_eq!(plans, [("pro", "active")], "{view}");
            assert_eq!(invoices, ["paid"]);
            assert_eq!(messages["used"], 0);
        }
        "cancel" => {
            assert_eq!(plans, [("free", "active")], "{view}");
            assert_eq!(messages["included"], 100);
            assert_eq!(messages["used"], 7, "usage carries over");
            assert_eq!(messages["next_reset_at"], "2027-01-18T11:06:40+00:00");
            // Pro ran from the subscription's start to its end; free restarted then.
            assert_eq!(
                ended,
                [(
                    "pro",
                    "2026-11-18T11:06:40+00:00",
                    "2026-12-18T11:06:40+00:00"
                )],
                "{view}"
            );
            assert_eq!(view["ended_products"][0]["next_renewal_at"], Value::Null);
            let free = &view["products"][0];
            assert_eq!(free["started_at"], "2026-12-18T11:06:40+00:00", "{view}");
            assert_eq!(
                (&free["interval"], &free["amount"]),
                (&Value::Null, &Value::Null)
            );
        }
        "upgrade" => {
            assert_eq!(plans, [("business", "active")], "{view}");
            assert_eq!(messages["included"], 10_000);
            assert_eq!(view["products"][0]["stripe_subscription_id"], "sub_RUN");
            // Business began when the upgrade was first seen (P1 + 900 s); pro ended then.
            assert_eq!(
                view["products"][0]["started_at"], "2026-11-18T11:21:40+00:00",
                "{view}"
            );
            assert_eq!(view["products"][0]["amount"], 9900);
            assert_eq!(
                ended,
                [
                    (
                        "pro",
                        "2026-11-18T11:06:40+00:00",
                        "2026-11-18T11:21:40+00:00"
                    ),
                    ("free", FREE_DAY_BEFORE, "2026-11-18T11:06:42+00:00"),
                ],
                "{view}"
            );
        }
        "three_d_secure" => {
            assert_eq!(plans, [("pro", "active")], "{view}");
            // An incomplete subscription never replaced free: it ended when pro went live.
            assert_eq!(
                ended,
                [("free", FREE_DAY_BEFORE, "2026-11-18T11:07:40+00:00")],
                "{view}"
            );
            assert_eq!(messages["included"], 1000);
            assert_eq!(invoices, ["paid"]);
            assert_eq!(view["attach"]["state"], "active", "{view}");
            assert_eq!(view["check"]["allowed"], true);
        }
        "abandoned" => {
            assert_eq!(plans, [("free", "active")], "{view}");
            assert_eq!(messages["included"], 100, "never granted: {view}");
            assert_eq!(invoices, ["void"]);
            assert_eq!(view["attach"]["state"], "expired", "{view}");
        }
        "async_paid" => {
            assert_eq!(plans, [("pro", "active")], "{view}");
            assert_eq!(messages["included"], 1000);
            assert_eq!(view["attach"]["state"], "completed", "{view}");
        }
        "async_failed" => {
            assert_eq!(plans, [("free", "active")], "{view}");
            assert_eq!(messages["included"], 100, "never granted: {view}");
            assert_eq!(view["attach"]["state"], "failed", "{view}");
        }
        "unpaid" => {
            assert_eq!(plans, [("pro", "unpaid")], "{view}");
            assert_eq!(messages["included"], 1000, "kept: {view}");
            assert_eq!(messages["used"], 40, "kept: {view}");
            assert_eq!(messages["suspended"], true, "{view}");
            assert_eq!(view["check"]["allowed"], false, "{view}");
            assert_eq!(view["check"]["reason"], "plan_suspended", "{view}");
            assert_eq!(view["payment_due"].as_array().unwrap().len(), 1, "{view}");
            assert_eq!(
                view["payment_due"][0]["hosted_invoice_url"],
                "https://invoice.example/RUN/2"
            );
        }
        "pause_resume" => {
            assert_eq!(plans, [("pro", "active")], "{view}");
            assert_eq!(messages["included"], 1000);
            assert_eq!(messages["used"], 25, "usage survives the pause: {view}");
            assert_eq!(messages["suspended"], false);
            assert_eq!(view["check"]["allowed"], true);
        }
        "cancel_at" => {
            assert_eq!(plans, [("free", "active")], "{view}");
            assert_eq!(messages["included"], 100);
            assert_eq!(messages["used"], 3, "usage carries over");
        }
        _ => unreachable!(),
    }
}

#[test]
fn three_d_secure_then_paid_converges() {
    check_scenario("three_d_secure");
}

#[test]
fn three_d_secure_abandoned_converges() {
    check_scenario("abandoned");
}

#[test]
fn async_checkout_paid_converges() {
    check_scenario("async_paid");
}

#[test]
fn async_checkout_failed_converges() {
    check_scenario("async_failed");
}

#[test]
fn renewal_failure_to_unpaid_converges() {
    check_scenario("unpaid");
}

#[test]
fn pause_then_resume_converges() {
    check_scenario("pause_resume");
}

#[test]
fn cancel_at_a_date_converges() {
    check_scenario("cancel_at");
}

#[test]
fn new_subscription_via_checkout_converges() {
    check_scenario("checkout");
}

#[test]
fn renewal_converges() {
    check_scenario("renewal");
}

#[test]
fn payment_failure_then_recovery_converges() {
    check_scenario("recovery");
}

#[test]
fn cancel_at_period_end_then_deletion_converges() {
    check_scenario("cancel");
}

#[test]
fn upgrade_within_a_group_converges() {
    check_scenario("upgrade");
}
