//! `GET /v1/customers`: search (case-insensitive substring of id, name or email), filters by
//! plan and status, keyset pages; refusals name the parameter.

use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

async fn list(app: &TestApp, query: &str) -> (StatusCode, Value) {
    app.api(Method::GET, &format!("/v1/customers?{query}"), None)
        .await
}

fn ids(page: &Value) -> Vec<&str> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect()
}

/// An active pro subscription for `customer`, as Stripe would send it.
fn pro_for(customer: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": format!("evt_pro_{customer}"), "object": "event", "api_version": "2026-09-30.endive",
        "created": 1_795_000_000, "livemode": false, "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null}, "type": "customer.subscription.created",
        "data": {"object": {
            "id": format!("sub_{customer}"), "object": "subscription",
            "customer": format!("cus_{customer}"), "status": "active",
            "cancel_at_period_end": false, "start_date": 1_795_000_000,
            "metadata": {"customer_id": customer},
            "items": {"object": "list", "data": [{
                "id": format!("si_{customer}"), "object": "subscription_item", "quantity": 1,
                "current_period_start": 1_795_000_000, "current_period_end": 1_797_592_000,
                "price": {"id": "price_search_pro", "object": "price", "metadata": {"plan_id": "pro"}}
            }]}
        }}
    }))
    .unwrap()
}

async fn seed(app: &TestApp) {
    for (id, name, email) in [
        ("u_alice", "Alice Smith", "alice@acme.test"),
        ("u_bob", "Bob Stone", "bob@acme.test"),
        ("u_carol", "Carol 100% Real", "carol@other.test"),
    ] {
        let (status, _) = app
            .create_customer(json!({"id": id, "name": name, "email": email}))
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    assert_eq!(app.post_event(&pro_for("u_bob")).await.0, StatusCode::OK);
    app.engine.run_until_idle().await.unwrap();
}

#[tokio::test]
async fn search_matches_any_part_of_id_name_or_email_ignoring_case() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let (status, page) = list(&app, "search=SMITH").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(ids(&page), ["u_alice"]);
    assert_eq!(page["data"][0]["email"], "alice@acme.test");
    assert_eq!(
        page["data"][0]["plans"],
        json!([{"plan_id": "free", "status": "active"}])
    );
    assert_eq!(
        ids(&list(&app, "search=acme.test").await.1),
        ["u_bob", "u_alice"]
    );
    assert_eq!(ids(&list(&app, "search=u_car").await.1), ["u_carol"]);
    // `%` and `_` are the text itself, not patterns.
    assert_eq!(ids(&list(&app, "search=100%25").await.1), ["u_carol"]);
    assert_eq!(ids(&list(&app, "search=%25").await.1), ["u_carol"]);
    assert!(ids(&list(&app, "search=nobody").await.1).is_empty());
}

#[tokio::test]
async fn filters_by_plan_and_status() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    assert_eq!(ids(&list(&app, "plan_id=pro").await.1), ["u_bob"]);
    assert_eq!(
        ids(&list(&app, "plan_id=free").await.1),
        ["u_carol", "u_alice"],
        "bob's free plan ended when pro started"
    );
    assert_eq!(
        ids(&list(&app, "status=active&search=acme").await.1),
        ["u_bob", "u_alice"]
    );
    assert_eq!(
        ids(&list(&app, "plan_id=free&status=expired").await.1),
        ["u_bob"]
    );
}

#[tokio::test]
async fn pages_follow_each_other_without_gaps_or_repeats() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let (_, first) = list(&app, "limit=2").await;
    assert_eq!(ids(&first), ["u_carol", "u_bob"]);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("more to come")
        .to_owned();
    let (_, second) = list(&app, &format!("limit=2&cursor={cursor}")).await;
    assert_eq!(ids(&second), ["u_alice"]);
    assert_eq!(second["next_cursor"], Value::Null, "the last page");
}

#[tokio::test]
async fn bad_parameters_are_400s_naming_them() {
    let app = TestApp::spawn().await;
    for (query, named) in [
        ("limit=0", "limit"),
        ("limit=many", "limit"),
        ("status=happy", "status"),
        ("cursor=abc", "cursor"),
        ("plan_id=bad%00id", "plan_id"),
        ("sort=name", "query"),
    ] {
        let (status, answer) = list(&app, query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {answer}");
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(named),
            "{query}: {answer}"
        );
    }
}

#[tokio::test]
async fn a_search_is_a_substring_of_one_field_not_across_two() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    // Only in the email.
    assert_eq!(ids(&list(&app, "search=bob@").await.1), ["u_bob"]);
    assert_eq!(ids(&list(&app, "search=other.TEST").await.1), ["u_carol"]);
    // The name ends in `smith` and the email starts with `alice`: no one field holds both.
    assert!(ids(&list(&app, "search=smith%20alice").await.1).is_empty());
    assert!(ids(&list(&app, "search=u_alice%20alice").await.1).is_empty());
}

/// Every customer whose id, name or email holds `search` (any case), newest first, found
/// by a scan.
async fn expected(app: &TestApp, search: &str, plan_id: Option<&str>) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.id FROM customers c
         WHERE (strpos(lower(c.id), $1) > 0 OR strpos(lower(c.name), $1) > 0
                OR strpos(lower(c.email), $1) > 0)
           AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM customer_plans p
                WHERE p.customer_pk = c.pk AND p.plan_id = $2 AND p.status <> 'expired'))
         ORDER BY c.pk DESC",
    )
    .bind(search.to_lowercase())
    .bind(plan_id)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

/// With statistics (ANALYZE), a search is looked up by its rare parts and checked whole, or
/// first checked on the newest 5,000 customers and then looked up below them; the answer is
/// the same as a scan's: every match, and nothing else. 6,000 customers, so that the walk
/// does not reach the oldest.
#[tokio::test]
async fn searches_by_rare_parts_find_every_match() {
    let app = TestApp::spawn().await;
    sqlx::query(
        "INSERT INTO customers (id, name, email)
         SELECT 'user_' || g,
                (ARRAY['Ada','Ben','Cleo'])[1 + g % 3] || ' ' ||
                (ARRAY['Smith','Kowalski','Nguyen','Garcia'])[1 + (g / 3) % 4] || '-' || (g % 97),
                'customer' || g || '@' || (ARRAY['acme.test','mail.test'])[1 + g % 2]
         FROM generate_series(1, 6000) g",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO customer_plans (customer_pk, plan_id, plan_group, status)
         SELECT pk, CASE WHEN pk % 10 = 0 THEN 'pro' ELSE 'free' END, 'main', 'active'
         FROM customers",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE customers")
        .execute(&app.pool)
        .await
        .unwrap();
    for search in [
        "user_1234",
        "USER_77",
        "er_2",
        "customer2999@",
        "2999@acme",
        "r299",
        "kowalski-42",
        "-4",
        "smith",
        "ada nguyen-1",
        "@mail.test",
        "nobody_9999",
        // Matches only among the oldest 1,000, or one among the newest and the rest there.
        "user_9",
        "user_6",
        "customer5",
        "ab",
        // About 1% of the customers: a second, longer walk, which reaches the oldest.
        "ada kowalski-1",
    ] {
        let query = format!(
            "search={}&limit=100",
            search.replace('@', "%40").replace(' ', "%20")
        );
        let (status, page) = list(&app, &query).await;
        assert_eq!(status, StatusCode::OK, "{search}: {page}");
        let all = expected(&app, search, None).await;
        assert_eq!(ids(&page), all[..all.len().min(100)], "{search}");
        let (_, page) = list(&app, &format!("{query}&plan_id=pro")).await;
        let all = expected(&app, search, Some("pro")).await;
        assert_eq!(ids(&page), all[..all.len().min(100)], "{search} on pro");
    }
    // Page by page, across the walk's end.
    for search in ["user_6", "ada kowalski-1", "kowalski-42"] {
        let mut seen: Vec<String> = Vec::new();
        let mut cursor = String::new();
        loop {
            let query = format!("search={}&limit=30{cursor}", search.replace(' ', "%20"));
            let (status, page) = list(&app, &query).await;
            assert_eq!(status, StatusCode::OK, "{search}: {page}");
            seen.extend(ids(&page).into_iter().map(str::to_owned));
            match page["next_cursor"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => break,
            }
        }
        assert_eq!(
            seen,
            expected(&app, search, None).await,
            "{search} by pages"
        );
    }
}
