//! Issue 24's input defects: what the API and the console refuse with a 400 (never a 500,
//! never another resource's answer).

use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use crate::console::ConsoleClient;
use crate::helpers::*;

fn code(answer: &Value) -> &str {
    answer["error"]["code"].as_str().unwrap_or("")
}

/// Defect 5: a NUL in a search or in a path id, a cursor Postgres cannot hold and an id too
/// long for any customer are refused as invalid requests, on the API and on the console.
#[tokio::test]
async fn nul_far_cursors_and_long_ids_are_400s_not_500s() {
    let app = TestApp::spawn().await;
    let (status, _) = app.create_customer(json!({"id": "u5"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let long = "x".repeat(300);
    for path in [
        "/v1/customers?search=%00".to_owned(),
        "/v1/customers?search=a%00b".to_owned(),
        "/v1/customers/a%00b/timeline".to_owned(),
        "/v1/customers/u5/timeline?cursor=-1000000000000000000_1".to_owned(),
        "/v1/customers/u5/timeline?cursor=9223372036854775807_1".to_owned(),
        format!("/v1/customers/{long}/timeline"),
        format!("/v1/customers/{long}/entities/e"),
        format!("/v1/customers/u5/entities/{long}"),
    ] {
        let (status, answer) = app.api(Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
        assert_eq!(code(&answer), "invalid_request", "{path}: {answer}");
    }
    let (status, answer) = app
        .api(
            Method::GET,
            "/v1/customers/u5/timeline?cursor=1795000000000000_1",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "a cursor we could give: {answer}");

    let mut console = ConsoleClient::new(&app);
    console.sign_in().await;
    for path in [
        "/console/customers?search=%00",
        "/console/customers/u5?timeline=-1000000000000000000_1",
        "/console/customers/a%00b",
    ] {
        let page = console.get(path).await;
        assert_eq!(
            page.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            page.body
        );
    }
}

/// Defect 8: `.` and `..` are no ids, and no path resolves upward: curl resolves
/// `DELETE /v1/customers/C/entities/..` to `DELETE /v1/customers/C/`, which must not be
/// the customer's `DELETE`.
#[tokio::test]
async fn dot_ids_are_refused_and_no_path_resolves_upward() {
    let app = TestApp::spawn().await;
    let (status, _) = app.create_customer(json!({"id": "u8"})).await;
    assert_eq!(status, StatusCode::CREATED);
    for id in [".", ".."] {
        let body = json!({"id": id, "name": "Team", "feature_id": "seats"});
        let (status, answer) = app
            .api(Method::POST, "/v1/customers/u8/entities", Some(body))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{id}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("`..`"),
            "{answer}"
        );
        let (status, answer) = app.create_customer(json!({"id": id})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{id}: {answer}");
    }
    for path in [
        "/v1/customers/u8/",                // what curl sends for `.../entities/..`
        "/v1/customers/u8/entities/..",     // a client that sends the path as is
        "/v1/customers/u8/entities/%2E%2E", // encoded
        "/v1/customers/u8/entities/.",
        "/v1/customers/u8/entities/x/..",
    ] {
        let (status, answer) = app.api(Method::DELETE, path, None).await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND,
            "{path}: {status} {answer}"
        );
        let (status, customer) = app.api(Method::GET, "/v1/customers/u8", None).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{path} deleted the customer: {customer}"
        );
        assert!(customer["deleted_at"].is_null(), "{path}: {customer}");
    }
    // The console's root keeps its trailing slash.
    let mut console = ConsoleClient::new(&app);
    console.sign_in().await;
    let page = console.get("/console/").await;
    assert_eq!(page.location(), "/console/customers");
}

/// Defect 9: a signed `invoice.paid` whose `hosted_invoice_url` is `javascript:...` stores no
/// link (the API shows none, the console draws none); an https one is kept.
#[tokio::test]
async fn links_from_stripe_are_https_only() {
    let app = TestApp::spawn().await;
    let (status, _) = app.create_customer(json!({"id": "user_123"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let fixture: Value =
        serde_json::from_slice(&std::fs::read(fixtures_dir().join("invoice.paid.json")).unwrap())
            .unwrap();
    for (n, url) in [
        "javascript:alert(document.cookie)",
        "https://invoice.stripe.com/i/ok",
    ]
    .into_iter()
    .enumerate()
    {
        let mut event = fixture.clone();
        event["id"] = format!("evt_link_{n}").into();
        event["created"] = (1_795_000_004 + n as i64).into();
        event["data"]["object"]["id"] = format!("in_link_{n}").into();
        event["data"]["object"]["hosted_invoice_url"] = url.into();
        let (status, body) = app.post_event(&serde_json::to_vec(&event).unwrap()).await;
        assert!(status.is_success(), "{body}");
        app.engine.run_until_idle().await.unwrap();
    }
    let (_, view) = app.api(Method::GET, "/v1/customers/user_123", None).await;
    let links: Vec<(&str, &Value)> = view["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["stripe_id"].as_str().unwrap(), &i["hosted_invoice_url"]))
        .collect();
    assert!(links.contains(&("in_link_0", &Value::Null)), "{links:?}");
    assert!(
        links.contains(&("in_link_1", &json!("https://invoice.stripe.com/i/ok"))),
        "{links:?}"
    );
    let mut console = ConsoleClient::new(&app);
    console.sign_in().await;
    let page = console.get("/console/customers/user_123").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("in_link_0"), "the invoice is shown");
    assert!(!page.body.contains("javascript:"), "{}", page.body);
}

/// Defect 10: a name (or email) longer in Stripe than our API allows is not stored as is.
#[tokio::test]
async fn a_stripe_side_name_is_held_to_our_bound() {
    let app = TestApp::spawn().await;
    let (status, _) = app
        .create_customer(json!({"id": "u10", "email": "u10@example.test"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let long_email = format!("{}@example.test", "e".repeat(400));
    for (n, name, email) in [(0, "ü".repeat(10_000), long_email.as_str())] {
        let event = json!({
            "id": format!("evt_long_{n}"), "object": "event", "api_version": "2026-09-30.endive",
            "created": 1_795_000_000 + n, "livemode": false, "type": "customer.updated",
            "data": {"object": {"id": "cus_Long10", "object": "customer", "name": name,
                                 "email": email, "metadata": {"customer_id": "u10"}}}
        });
        let (status, body) = app.post_event(&serde_json::to_vec(&event).unwrap()).await;
        assert!(status.is_success(), "{body}");
        app.engine.run_until_idle().await.unwrap();
    }
    let (_, view) = app.api(Method::GET, "/v1/customers/u10", None).await;
    assert_eq!(view["stripe_id"], "cus_Long10", "{view}");
    assert_eq!(
        view["name"].as_str().unwrap().chars().count(),
        255,
        "{view}"
    );
    assert_eq!(
        view["email"], "u10@example.test",
        "an email over 320 is not copied"
    );
}
