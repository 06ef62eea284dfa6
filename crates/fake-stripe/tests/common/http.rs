//! Raw `/v1` requests to the fake, as form bodies, and their JSON answers.

use bytes::Bytes;
use fake_stripe::FakeStripe;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// The body of a 200, or a panic showing the error.
pub fn ok((status, body): (u16, Value)) -> Value {
    assert_eq!(status, 200, "{body}");
    body
}

/// A raw `/v1` request with form parameters; returns the status and the JSON body.
pub async fn raw(fake: &FakeStripe, method: &str, path: &str, form: &str) -> (u16, Value) {
    let (status, body, _) = raw_with_id(fake, method, path, form).await;
    (status, body)
}

/// As [`raw`], with the answer's `Request-Id` too.
pub async fn raw_with_id(
    fake: &FakeStripe,
    method: &str,
    path: &str,
    form: &str,
) -> (u16, Value, String) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let (uri, body) = match method {
        "GET" => (format!("{}{path}?{form}", fake.url()), Bytes::new()),
        _ => (
            format!("{}{path}", fake.url()),
            Bytes::from(form.to_owned()),
        ),
    };
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", "Bearer sk_test_fake")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(body))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let request_id = response.headers()["request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap();
    (status, body, request_id)
}
