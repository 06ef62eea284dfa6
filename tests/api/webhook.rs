use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, StatusCode};
use outbox::log as events;
use stripe_reconciler::config::Secret;
use stripe_reconciler::stripe::signature;

use crate::helpers::*;

#[tokio::test]
async fn a_signed_event_is_stored_with_its_envelope_and_raw_body() {
    let app = TestApp::spawn().await;
    let body = std::fs::read(fixtures_dir().join("invoice.paid.json")).unwrap();
    let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let id = parsed["id"].as_str().unwrap();

    let (status, answer) = app.post_event(&body).await;

    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["duplicate"], false);
    let row = events::get(&app.pool, id).await.unwrap().expect("stored");
    assert_eq!(row.event_type, "invoice.paid");
    assert_eq!(row.created, parsed["created"].as_i64().unwrap());
    assert!(!row.livemode);
    assert_eq!(row.api_version.as_deref(), parsed["api_version"].as_str());
    assert_eq!(
        row.object_id.as_deref(),
        parsed["data"]["object"]["id"].as_str()
    );
    assert_eq!(
        row.customer_id.as_deref(),
        parsed["data"]["object"]["customer"].as_str()
    );
    let payload = events::payload(&app.pool, id).await.unwrap().unwrap();
    assert_eq!(payload, body, "the raw body is stored byte for byte");
    assert_eq!(app.count("SELECT count(*) FROM jobs").await, 1);
}

#[tokio::test]
async fn either_rotated_secret_verifies_and_an_unknown_one_does_not() {
    let app = TestApp::spawn().await;
    for (i, secret) in [SECRET_OLD, SECRET_NEW].into_iter().enumerate() {
        let body = event(&format!("evt_rot{i}"), "invoice.paid", "cus_1");
        let sig = signature::sign(&Secret::new(secret), now(), &body);
        let (status, _) = app.post_webhook(&body, Some(&sig)).await;
        assert_eq!(status, StatusCode::OK, "secret {i}");
    }
    let body = event("evt_rot_bad", "invoice.paid", "cus_1");
    let sig = signature::sign(&Secret::new("whsec_someone_else"), now(), &body);
    let (status, answer) = app.post_webhook(&body, Some(&sig)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["code"], "no_matching_signature");
    assert_eq!(app.count("SELECT count(*) FROM events").await, 2);
}

#[tokio::test]
async fn the_timestamp_tolerance_holds_in_both_directions() {
    let app = TestApp::spawn_with(|s| s.signature_tolerance_secs = 60).await;
    let secret = Secret::new(SECRET_NEW);
    let cases = [(-58, true), (58, true), (-63, false), (63, false)];
    for (i, (offset, accepted)) in cases.into_iter().enumerate() {
        let body = event(&format!("evt_tol{i}"), "invoice.paid", "cus_1");
        let sig = signature::sign(&secret, now() + offset, &body);
        let (status, answer) = app.post_webhook(&body, Some(&sig)).await;
        if accepted {
            assert_eq!(status, StatusCode::OK, "offset {offset}: {answer}");
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST, "offset {offset}");
            assert_eq!(answer["error"]["code"], "timestamp_out_of_tolerance");
        }
    }
}

#[tokio::test]
async fn any_of_several_v1_values_may_match() {
    let app = TestApp::spawn().await;
    let body = event("evt_multi", "invoice.paid", "cus_1");
    let t = now();
    let good = signature::sign(&Secret::new(SECRET_NEW), t, &body);
    let good_v1 = good.split_once("v1=").unwrap().1;
    let header = format!("t={t},v1={},v0=ignored,v1={good_v1}", "ab".repeat(32));
    let (status, _) = app.post_webhook(&body, Some(&header)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn each_refusal_has_its_reason_code_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let body = event("evt_refused", "invoice.paid", "cus_1");
    let (status, answer) = app.post_webhook(&body, None).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("missing_signature"))
    );
    let (status, answer) = app.post_webhook(&body, Some("t=abc,v1=zz")).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_signature"))
    );
    assert!(answer["error"]["message"].as_str().unwrap().contains("t="));

    // Authentic, but not a Stripe event.
    let not_event = br#"{"hello":"world"}"#;
    let (status, answer) = app.post_event(not_event).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_payload"))
    );
    assert_eq!(app.count("SELECT count(*) FROM events").await, 0);
}

#[tokio::test]
async fn fifty_concurrent_deliveries_of_one_event_are_stored_once() {
    let app = TestApp::spawn().await;
    let body = event("evt_concurrent", "customer.subscription.updated", "cus_1");
    let answers = futures::future::join_all((0..50).map(|_| app.post_event(&body))).await;
    for (status, answer) in &answers {
        assert_eq!(*status, StatusCode::OK, "{answer}");
    }
    let fresh = answers
        .iter()
        .filter(|(_, a)| a["duplicate"] == false)
        .count();
    assert_eq!(fresh, 1, "exactly one delivery stored it");
    assert_eq!(app.count("SELECT count(*) FROM events").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM jobs").await, 1);
}

#[tokio::test]
async fn oversized_bodies_get_413_declared_or_streamed() {
    let app = TestApp::spawn_with(|s| s.http.max_body_bytes = 4096).await;
    let mut big = event("evt_big", "invoice.paid", "cus_1");
    big.extend(std::iter::repeat_n(b' ', 5000));
    let (status, answer) = app.post_event(&big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer["error"]["code"], "payload_too_large");

    // No Content-Length: the limit applies while streaming.
    let chunks: Vec<Result<hyper::body::Frame<Bytes>, std::convert::Infallible>> = big
        .chunks(1000)
        .map(|c| Ok(hyper::body::Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    let stream_body = http_body_util::StreamBody::new(futures::stream::iter(chunks));
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let sig = signature::sign(&Secret::new(SECRET_OLD), now(), &big);
    let req = Request::post(app.url("/webhooks/stripe"))
        .header("stripe-signature", sig)
        .body(stream_body)
        .unwrap();
    let response = client.request(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.count("SELECT count(*) FROM events").await, 0);

    // The limit is not a problem for a normal event afterwards.
    let (status, _) = app
        .post_event(&event("evt_small", "invoice.paid", "cus_1"))
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn database_down_is_503_and_never_a_2xx() {
    let app = TestApp::spawn().await;
    let (status, _) = app
        .post_event(&event("evt_before", "invoice.paid", "cus_1"))
        .await;
    assert_eq!(status, StatusCode::OK);

    drop_database(&app.database_url).await;

    let (status, answer) = app
        .post_event(&event("evt_during", "invoice.paid", "cus_1"))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(answer["error"]["code"], "database_unavailable");
    assert!(
        !answer.to_string().contains("rt_"),
        "internal details stay out of the body: {answer}"
    );
    let (status, _) = app.get("/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json_errors() {
    let app = TestApp::spawn().await;
    let (status, answer) = app.get("/nope", None).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, _) = app.get("/webhooks/stripe", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let req = Request::put(app.url("/healthz"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(app.send(req).await.0, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn a_405_says_which_methods_the_path_has() {
    let app = TestApp::spawn().await;
    let allow = |path: &'static str, method: hyper::Method| {
        let app = &app;
        async move {
            let req = Request::builder()
                .method(method)
                .uri(app.url(path))
                .header("authorization", format!("Bearer {API_TOKEN}"))
                .body(Full::new(Bytes::new()))
                .unwrap();
            let response = app.client.request(req).await.expect("request sent");
            assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
            response.headers()["allow"].to_str().unwrap().to_owned()
        }
    };
    assert_eq!(allow("/webhooks/stripe", hyper::Method::GET).await, "POST");
    assert_eq!(allow("/healthz", hyper::Method::PUT).await, "GET");
    assert_eq!(
        allow("/v1/customers", hyper::Method::PUT).await,
        "POST, GET"
    );
    assert_eq!(
        allow("/v1/customers/cus_1", hyper::Method::POST).await,
        "GET, PATCH, DELETE"
    );
}
