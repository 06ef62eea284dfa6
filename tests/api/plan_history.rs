//! A plan's history in the customer view (`products`, `ended_products`) is the same in every
//! delivery order of one subscription's events: an upgrade, a change to the replaced plan
//! seen late, and a renewal after the upgrade, in all 24 orders.

use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

const P1: (i64, i64) = (1_795_000_000, 1_797_592_000);
const P2: (i64, i64) = (1_797_592_000, 1_800_184_000);

/// A `customer.subscription.*` event of run `run`: subscription `sub_{run}` on `plan`.
fn event(run: usize, n: usize, created: i64, plan: &str, period: (i64, i64), qty: i64) -> Vec<u8> {
    let kind = if n == 0 { "created" } else { "updated" };
    serde_json::to_vec(&json!({
        "id": format!("evt_hist_{run}_{n}"), "object": "event",
        "api_version": "2026-09-30.endive", "created": created, "livemode": false,
        "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null},
        "type": format!("customer.subscription.{kind}"),
        "data": { "object": {
            "id": format!("sub_hist_{run}"), "object": "subscription",
            "customer": format!("cus_hist_{run}"), "status": "active",
            "cancel_at_period_end": false, "cancel_at": null, "canceled_at": null,
            "ended_at": null, "start_date": P1.0,
            "metadata": { "customer_id": format!("u_hist_{run}") },
            "items": { "object": "list", "data": [{
                "id": format!("si_hist_{run}"), "object": "subscription_item", "quantity": qty,
                "current_period_start": period.0, "current_period_end": period.1,
                "price": { "id": format!("price_{plan}"), "object": "price",
                           "metadata": { "plan_id": plan } }
            }]}
        }}
    }))
    .unwrap()
}

/// Every order of `0..n`.
fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut all = Vec::new();
    for rest in permutations(n - 1) {
        for at in 0..=rest.len() {
            let mut order = rest.clone();
            order.insert(at, n - 1);
            all.push(order);
        }
    }
    all
}

/// The plans of the view, with the run's ids taken out.
fn plans(view: &Value, run: usize) -> Value {
    let text = json!({"products": view["products"], "ended_products": view["ended_products"]})
        .to_string()
        .replace(&format!("sub_hist_{run}"), "SUB");
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn an_upgrades_history_is_the_same_in_every_delivery_order() {
    let app = TestApp::spawn().await;
    let mut first: Option<Value> = None;
    for (run, order) in permutations(4).into_iter().enumerate() {
        let customer = format!("u_hist_{run}");
        let (status, _) = app.create_customer(json!({"id": customer})).await;
        assert_eq!(status, StatusCode::CREATED);
        // The free plan began a day before, whenever the test runs.
        sqlx::query(
            "UPDATE customer_plans SET started_at = to_timestamp($2)
             WHERE customer_pk = (SELECT pk FROM customers WHERE id = $1)",
        )
        .bind(&customer)
        .bind((P1.0 - 86_400) as f64)
        .execute(&app.pool)
        .await
        .unwrap();
        let events = [
            event(run, 0, P1.0 + 2, "pro", P1, 1),
            // Pro's seats change before the upgrade: the ended pro shows 3.
            event(run, 1, P1.0 + 500, "pro", P1, 3),
            event(run, 2, P1.0 + 900, "business", P1, 3),
            event(run, 3, P2.0 + 3, "business", P2, 3),
        ];
        for &i in &order {
            let (status, answer) = app.post_event(&events[i]).await;
            assert_eq!(status, StatusCode::OK, "{answer}");
            app.engine.run_until_idle().await.unwrap();
        }
        let (status, view) = app
            .api(Method::GET, &format!("/v1/customers/{customer}"), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        let got = plans(&view, run);
        match &first {
            None => first = Some(got),
            Some(expected) => assert_eq!(&got, expected, "order {order:?}"),
        }
    }
    // And the one state is the right one.
    let view = first.unwrap();
    let business = &view["products"][0];
    assert_eq!(business["plan_id"], "business", "{view}");
    assert_eq!(
        business["started_at"], "2026-11-18T11:21:40+00:00",
        "P1 + 900 s"
    );
    assert_eq!(business["current_period_end"], "2027-01-17T11:06:40+00:00");
    let ended = view["ended_products"].as_array().unwrap();
    assert_eq!(ended.len(), 2, "{view}");
    let pro = &ended[0];
    assert_eq!(
        (&pro["plan_id"], &pro["status"], &pro["quantity"]),
        (&json!("pro"), &json!("expired"), &json!(3)),
        "{view}"
    );
    assert_eq!(pro["started_at"], "2026-11-18T11:06:40+00:00", "start_date");
    assert_eq!(
        pro["ended_at"], "2026-11-18T11:21:40+00:00",
        "with the upgrade"
    );
    assert_eq!(pro["next_renewal_at"], Value::Null);
    let free = &ended[1];
    assert_eq!(free["plan_id"], "free");
    assert_eq!(free["started_at"], "2026-11-17T11:06:40+00:00");
    assert_eq!(
        free["ended_at"], "2026-11-18T11:06:42+00:00",
        "pro first seen"
    );
}
