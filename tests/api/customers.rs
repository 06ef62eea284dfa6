//! `/v1/customers`, `/v1/check`, `/v1/track`.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

impl TestApp {
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let body = body.map_or(Bytes::new(), |b| Bytes::from(b.to_string()));
        let req = Request::builder()
            .method(method)
            .uri(self.url(path))
            .header("authorization", format!("Bearer {API_TOKEN}"))
            .header("content-type", "application/json")
            .body(Full::new(body))
            .unwrap();
        self.send(req).await
    }

    pub async fn create_customer(&self, body: Value) -> (StatusCode, Value) {
        self.api(Method::POST, "/v1/customers", Some(body)).await
    }
}

#[tokio::test]
async fn get_or_create_is_idempotent_and_grants_the_default_plan() {
    let app = TestApp::spawn().await;
    let (status, created) = app
        .create_customer(json!({"id": "user_1", "name": "Ada", "email": "ada@example.com"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["id"], "user_1");
    assert_eq!(created["products"][0]["plan_id"], "free");
    assert_eq!(created["products"][0]["status"], "active");
    let messages = &created["balances"][0];
    assert_eq!(
        (
            messages["feature_id"].as_str(),
            messages["included"].as_i64()
        ),
        (Some("messages"), Some(100))
    );
    assert_eq!(messages["balance"], 100);
    assert!(messages["next_reset_at"].is_string());

    let (status, again) = app
        .create_customer(json!({"id": "user_1", "name": "Ada L."}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        again["name"], "Ada L.",
        "get-or-create refreshes given fields"
    );
    assert_eq!(again["email"], "ada@example.com", "and keeps the others");
    assert_eq!(
        again["products"].as_array().unwrap().len(),
        1,
        "no second default plan"
    );
}

#[tokio::test]
async fn concurrent_get_or_create_makes_one_customer() {
    let app = TestApp::spawn().await;
    let calls = (0..10).map(|_| app.create_customer(json!({"id": "user_race"})));
    let answers = futures::future::join_all(calls).await;
    let created = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert!(answers.iter().all(|(s, _)| s.is_success()));
    assert_eq!(created, 1);
    assert_eq!(app.count("SELECT count(*) FROM customers").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM customer_plans").await, 1);
}

#[tokio::test]
async fn a_pre_created_customer_is_claimed_by_email() {
    let app = TestApp::spawn().await;
    let (status, pre) = app
        .create_customer(json!({"email": "cto@acme.test", "name": "Acme"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(pre["id"], Value::Null);

    let (status, claimed) = app
        .create_customer(json!({"id": "acme_user", "email": "CTO@acme.test"}))
        .await;
    assert_eq!(status, StatusCode::OK, "claimed, not created: {claimed}");
    assert_eq!(claimed["id"], "acme_user");
    assert_eq!(claimed["name"], "Acme");
    assert_eq!(app.count("SELECT count(*) FROM customers").await, 1);
}

#[tokio::test]
async fn validation_errors_name_the_field() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!({"name": "no id"}), "`id`"),
        (json!({"id": "x", "email": "not-an-email"}), "`email`"),
        (json!({"id": "x", "metadata": [1, 2]}), "`metadata`"),
        (json!({"id": "x", "nmae": "typo"}), "nmae"),
        (json!({"id": 5}), "invalid type"),
    ];
    for (body, needle) in cases {
        let (status, answer) = app.create_customer(body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer["error"]["code"], "invalid_request");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{message} should name {needle}");
    }
    let (status, answer) = app
        .api(
            Method::POST,
            "/v1/track",
            Some(json!({"feature_id": "messages"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("customer_id")
    );
}

#[tokio::test]
async fn update_and_delete_touch_only_our_customer() {
    let app = TestApp::spawn().await;
    app.create_customer(json!({"id": "user_u"})).await;
    let (status, updated) = app
        .api(
            Method::PATCH,
            "/v1/customers/user_u",
            Some(json!({"name": "New", "email": "n@x.test", "metadata": {"tier": "gold"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            updated["name"].as_str(),
            updated["metadata"]["tier"].as_str()
        ),
        (Some("New"), Some("gold"))
    );

    let (status, _) = app.api(Method::DELETE, "/v1/customers/user_u", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.api(Method::GET, "/v1/customers/user_u", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("customer_not_found"))
    );
    assert_eq!(app.count("SELECT count(*) FROM customer_plans").await, 0);
    let (status, _) = app
        .api(Method::PATCH, "/v1/customers/user_u", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn check_and_track_respect_balances_and_idempotency_keys() {
    let app = TestApp::spawn().await;
    app.create_customer(json!({"id": "user_t"})).await;
    let track = |key: &'static str, value: i64| {
        app.api(
            Method::POST,
            "/v1/track",
            Some(json!({"customer_id": "user_t", "feature_id": "messages", "value": value, "idempotency_key": key})),
        )
    };
    let (status, first) = track("k1", 30).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(
        (first["balance"].as_i64(), first["duplicate"].as_bool()),
        (Some(70), Some(false))
    );
    let (_, again) = track("k1", 30).await;
    assert_eq!(
        (again["balance"].as_i64(), again["duplicate"].as_bool()),
        (Some(70), Some(true))
    );

    let check = |required: i64| {
        app.api(
            Method::POST,
            "/v1/check",
            Some(json!({"customer_id": "user_t", "feature_id": "messages", "required": required})),
        )
    };
    let (_, ok) = check(70).await;
    assert_eq!(
        (ok["allowed"].as_bool(), ok["balance"].as_i64()),
        (Some(true), Some(70))
    );
    let (_, no) = check(71).await;
    assert_eq!(no["allowed"], false, "the free plan has no overage");

    // A boolean feature the customer's plans do not grant.
    let (status, body) = app
        .api(
            Method::POST,
            "/v1/check",
            Some(json!({"customer_id": "user_t", "feature_id": "priority_support"})),
        )
        .await;
    assert_eq!(
        (status, body["allowed"].as_bool()),
        (StatusCode::OK, Some(false))
    );
}

#[tokio::test]
async fn check_and_track_name_unknown_customers_and_features() {
    let app = TestApp::spawn().await;
    app.create_customer(json!({"id": "user_k"})).await;
    for path in ["/v1/check", "/v1/track"] {
        let (status, body) = app
            .api(
                Method::POST,
                path,
                Some(json!({"customer_id": "nobody", "feature_id": "messages"})),
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("customer_not_found"))
        );
        let (status, body) = app
            .api(
                Method::POST,
                path,
                Some(json!({"customer_id": "user_k", "feature_id": "nope"})),
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("feature_not_found"))
        );
    }
}

#[tokio::test]
async fn every_customer_endpoint_needs_the_token() {
    let app = TestApp::spawn().await;
    for (method, path) in [
        (Method::POST, "/v1/customers"),
        (Method::GET, "/v1/customers/x"),
        (Method::PATCH, "/v1/customers/x"),
        (Method::DELETE, "/v1/customers/x"),
        (Method::POST, "/v1/check"),
        (Method::POST, "/v1/track"),
    ] {
        let req = Request::builder()
            .method(method.clone())
            .uri(app.url(path))
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        let (status, body) = app.send(req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(body["error"]["code"], "unauthorized");
    }
}
