//! Properties of the `/v1` API under arbitrary bodies, against the real app and Postgres:
//! whatever a caller sends to POST/PATCH customers, check, track or attach, the answer is
//! never a 5xx, every 4xx is a JSON error with a `code`, and the customer the bodies aim at
//! stays readable (GET and check answer 200).
//!
//! Bodies are random JSON (any structure, strings with NUL, control characters, Unicode,
//! thousands of characters; huge, negative and fractional numbers; wrong types), objects
//! made of the endpoint's own field names with such values, and raw text JSON cannot hold
//! (number literals beyond any integer type, lone surrogates, invalid UTF-8).
//!
//! Needs `DATABASE_URL` (run through `scripts/test.sh`). `PROPTEST_CASES` sets the cases per
//! endpoint (default 128); the seed is random each run and a failure prints the input.

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use bytes::Bytes;
use fake_stripe::{FakeConfig, FakeStripe};
use http_body_util::Full;
use hyper::{Method, Request, StatusCode};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};
use stripe_reconciler::config::Secret;

use helpers::{API_TOKEN, TestApp};

const CUSTOMER: &str = "prop_customer";

/// A request body: JSON, text that only looks like JSON, or any bytes.
#[derive(Debug, Clone)]
enum Body {
    Json(Value),
    Raw(String),
    Bytes(Vec<u8>),
}

impl Body {
    fn into_bytes(self) -> Bytes {
        match self {
            Body::Json(value) => Bytes::from(value.to_string()),
            Body::Raw(text) => Bytes::from(text),
            Body::Bytes(bytes) => Bytes::from(bytes),
        }
    }
}

// ---- strategies ------------------------------------------------------------------------

fn nasty_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,16}",
        ".{0,16}",
        "[\\x00-\\x1f a-z/%?&#\\[\\]\\\\]{0,16}",
        Just("a\u{0}b".to_owned()),
        Just("\u{0}".to_owned()),
        (0usize..6_000).prop_map(|n| "x".repeat(n)),
        (0usize..400).prop_map(|n| "ü".repeat(n)),
        "cus_[A-Za-z0-9_/.?=&\\[\\]]{0,24}",
        "https?://[a-z.]{1,12}/[\\x00-\\x7f]{0,12}",
    ]
}

/// Amounts around every edge: the valid range, its ends, beyond them, other number types.
fn amount() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-5i64..5).prop_map(Value::from),
        (0i64..=1_000_000_000_000).prop_map(Value::from),
        Just(json!(1_000_000_000_000_i64)),
        Just(json!(1_000_000_000_001_i64)),
        Just(json!(i64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(u64::MAX)),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
    ]
}

/// Values the field of that name could take, mostly valid-looking, so that bodies get
/// past deserializing and into validation, the store and the balances.
fn plausible(field: &'static str) -> BoxedStrategy<Value> {
    let valid: BoxedStrategy<Value> = match field {
        "id" | "customer_id" => Just(json!(CUSTOMER)).boxed(),
        "feature_id" => prop_oneof![
            3 => Just(json!("messages")),
            1 => Just(json!("seats")),
            1 => Just(json!("priority_support")),
        ]
        .boxed(),
        "plan_id" => prop::sample::select(&["pro", "free", "business", "priority-support"][..])
            .prop_map(Value::from)
            .boxed(),
        "value" | "required" => amount().boxed(),
        "success_url" | "cancel_url" => Just(json!("https://app.test/ok")).boxed(),
        "email" => Just(json!("a@b.test")).boxed(),
        "stripe_id" => "cus_[A-Za-z0-9_]{1,12}".prop_map(Value::from).boxed(),
        "metadata" => prop::collection::vec((nasty_string(), any_value()), 0..4)
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect()))
            .boxed(),
        "create_in_stripe" => any::<bool>().prop_map(Value::from).boxed(),
        _ => "[a-z0-9]{1,12}".prop_map(Value::from).boxed(),
    };
    prop_oneof![6 => valid, 1 => leaf(), 1 => any_value()].boxed()
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        nasty_string().prop_map(Value::from),
    ]
}

fn any_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((nasty_string(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// An object of the endpoint's own fields, each present or not, and now and then an
/// unknown one.
fn fields_object(fields: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let known: Vec<_> = fields
        .iter()
        .map(|field| {
            prop::option::weighted(0.9, plausible(field).prop_map(|v| (field.to_string(), v)))
        })
        .collect();
    let unknown = prop::option::weighted(0.1, (nasty_string(), leaf()));
    (known, unknown).prop_map(|(known, unknown)| {
        Value::Object(
            known
                .into_iter()
                .flatten()
                .chain(unknown)
                .collect::<Map<_, _>>(),
        )
    })
}

/// Text no JSON value serializes to: numbers beyond i64/u64/f64, lone surrogates, NULs.
fn raw(fields: &'static [&'static str]) -> impl Strategy<Value = String> {
    let literal = prop_oneof![
        "-?[1-9][0-9]{19,400}",
        "-?[0-9]{1,3}\\.[0-9]{1,3}e-?[0-9]{3,5}",
        Just("\"\\ud800\"".to_owned()),
        Just("\"\\udc00x\"".to_owned()),
        Just("\"a\\u0000b\"".to_owned()),
        Just("{\"\\u0000\": \"\\u0000\"}".to_owned()),
        Just("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]".to_owned()),
        Just("".to_owned()),
    ];
    (prop::sample::select(fields), literal)
        .prop_map(|(field, literal)| format!("{{\"{field}\": {literal}}}"))
}

fn body(fields: &'static [&'static str]) -> impl Strategy<Value = Body> {
    prop_oneof![
        6 => fields_object(fields).prop_map(Body::Json),
        2 => any_value().prop_map(Body::Json),
        1 => raw(fields).prop_map(Body::Raw),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Body::Bytes),
    ]
}

// ---- the app ---------------------------------------------------------------------------

async fn send(app: &TestApp, method: Method, path: &str, body: Bytes) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(app.url(path))
        .header("authorization", format!("Bearer {API_TOKEN}"))
        .header("content-type", "application/json")
        .body(Full::new(body))
        .unwrap();
    app.send(req).await
}

/// The app with Stripe enabled (the fake), so attach bodies get past "not configured".
async fn app() -> (TestApp, FakeStripe) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stripe = FakeStripe::start(
        listener,
        FakeConfig {
            webhook_url: None,
            webhook_secret: None,
        },
    )
    .await;
    let base = stripe.url();
    let app = TestApp::spawn_with(|s| {
        s.stripe.api_key = Some(Secret::new("sk_test_props"));
        s.stripe.api_base = base;
        s.stripe.attach_wait_ms = 0;
        s.http.max_body_bytes = 64 * 1024;
    })
    .await;
    let (status, body) = send(
        &app,
        Method::POST,
        "/v1/customers",
        Bytes::from(json!({"id": CUSTOMER}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (app, stripe)
}

/// The property for one answer, then the customer's readability.
async fn holds(app: &TestApp, status: StatusCode, answer: &Value) -> Result<(), TestCaseError> {
    prop_assert!(!status.is_server_error(), "{status}: {answer}");
    if status.is_client_error() {
        let code = answer["error"]["code"].as_str();
        prop_assert!(code.is_some_and(|c| !c.is_empty()), "{status}: {answer}");
    }
    let (status, customer) = send(
        app,
        Method::GET,
        &format!("/v1/customers/{CUSTOMER}"),
        Bytes::new(),
    )
    .await;
    prop_assert_eq!(status, StatusCode::OK, "the customer: {}", customer);
    let check = json!({"customer_id": CUSTOMER, "feature_id": "messages"}).to_string();
    let (status, answer) = send(app, Method::POST, "/v1/check", Bytes::from(check)).await;
    prop_assert_eq!(status, StatusCode::OK, "check: {}", answer);
    Ok(())
}

fn runner() -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(128);
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_body_gets_a_5xx_or_makes_the_customer_unreadable() {
    let (app, _stripe) = app().await;
    let patch = format!("/v1/customers/{CUSTOMER}");
    let endpoints: [(Method, &str, &'static [&'static str]); 5] = [
        (
            Method::POST,
            "/v1/customers",
            &[
                "id",
                "name",
                "email",
                "fingerprint",
                "metadata",
                "create_in_stripe",
                "stripe_id",
            ],
        ),
        (Method::PATCH, &patch, &["name", "email", "metadata"]),
        (
            Method::POST,
            "/v1/check",
            &["customer_id", "feature_id", "required"],
        ),
        (
            Method::POST,
            "/v1/track",
            &["customer_id", "feature_id", "value", "idempotency_key"],
        ),
        (
            Method::POST,
            "/v1/attach",
            &["customer_id", "plan_id", "success_url", "cancel_url"],
        ),
    ];
    let handle = tokio::runtime::Handle::current();
    for (method, path, fields) in endpoints {
        let result = tokio::task::block_in_place(|| {
            runner().run(&body(fields), |body| {
                handle.block_on(async {
                    let (status, answer) =
                        send(&app, method.clone(), path, body.into_bytes()).await;
                    holds(&app, status, &answer).await
                })
            })
        });
        if let Err(failure) = result {
            panic!("{method} {path}: {failure}");
        }
    }
}
