//! `GET /v1/customers/{id}/usage`: totals per day or hour, and the raw records as CSV.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

async fn track(app: &TestApp, value: i64, key: &str) {
    let body = json!({"customer_id": "u_use", "feature_id": "messages", "value": value,
                      "idempotency_key": key});
    let (status, answer) = app.api(Method::POST, "/v1/track", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

/// Three records today, one of them moved to yesterday.
async fn seeded() -> TestApp {
    let app = TestApp::spawn().await;
    app.create_customer(json!({"id": "u_use"})).await;
    track(&app, 5, "k,1").await;
    track(&app, 7, "say \"hi\"").await;
    track(&app, 11, "k3").await;
    sqlx::query(
        "UPDATE usage_events SET recorded_at = date_trunc('day', now() AT TIME ZONE 'UTC')
                                               AT TIME ZONE 'UTC' - interval '12 hours'
         WHERE idempotency_key = 'k,1'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    app
}

async fn usage(app: &TestApp, query: &str) -> (StatusCode, Value) {
    app.api(
        Method::GET,
        &format!("/v1/customers/u_use/usage?{query}"),
        None,
    )
    .await
}

#[tokio::test]
async fn usage_is_summed_per_day_or_hour() {
    let app = seeded().await;
    let (status, days) = usage(&app, "feature_id=messages").await;
    assert_eq!(status, StatusCode::OK, "{days}");
    let totals: Vec<i64> = days["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["total"].as_i64().unwrap())
        .collect();
    assert_eq!(totals, [5, 18], "yesterday, then today: {days}");
    assert!(
        days["data"][0]["bucket"]
            .as_str()
            .unwrap()
            .ends_with("T00:00:00+00:00")
    );

    let (_, hours) = usage(&app, "feature_id=messages&group_by=hour").await;
    let total: i64 = hours["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["total"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 23);
    assert!(hours["data"].as_array().unwrap().len() >= 2, "{hours}");
}

#[tokio::test]
async fn the_raw_records_export_as_csv() {
    let app = seeded().await;
    let req = Request::builder()
        .method(Method::GET)
        .uri(app.url("/v1/customers/u_use/usage?feature_id=messages"))
        .header("authorization", format!("Bearer {API_TOKEN}"))
        .header("accept", "text/csv")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = app.client.request(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(body.to_vec()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "id,feature_id,value,idempotency_key,recorded_at");
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[1].contains(",\"messages\",5,\"k,1\","),
        "oldest first: {text}"
    );
    assert!(
        lines[2..].iter().any(|l| l.contains("\"say \"\"hi\"\"\"")),
        "{text}"
    );
}

#[tokio::test]
async fn bad_parameters_are_400s_naming_them_and_unknowns_404s() {
    let app = seeded().await;
    for (query, named) in [
        ("group_by=day", "feature_id"),
        ("feature_id=messages&group_by=week", "group_by"),
        ("feature_id=messages&from=yesterday", "from"),
        (
            "feature_id=messages&from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z",
            "from",
        ),
        (
            "feature_id=messages&group_by=hour&from=2026-01-01T00:00:00Z&to=2026-12-01T00:00:00Z",
            "from",
        ),
        ("feature_id=messages&sort=asc", "query"),
    ] {
        let (status, answer) = usage(&app, query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {answer}");
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(named),
            "{query}: {answer}"
        );
    }
    let (status, _) = usage(&app, "feature_id=nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .api(
            Method::GET,
            "/v1/customers/nobody/usage?feature_id=messages",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
