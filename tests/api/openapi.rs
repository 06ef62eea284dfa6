//! `GET /v1/openapi.json`: the committed document (docs/openapi.json) is what the daemon
//! serves, behind the API token, and every operation it names is answered by a route of
//! the running server (the document's own test checks the other way: every route is in
//! it).

use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn the_served_document_is_the_committed_one_and_every_operation_is_routed() {
    let app = TestApp::spawn().await;
    let (status, _) = app.get("/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the document is /v1's");
    let (status, served) = app.api(Method::GET, "/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(served, committed);

    let paths = served["paths"].as_object().unwrap();
    assert!(paths.len() >= 20, "{}", paths.len());
    for (template, operations) in paths {
        // Every `{param}` filled in with an id no customer has.
        let path: String = template
            .split('/')
            .map(|s| if s.starts_with('{') { "nobody" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        for method in operations.as_object().unwrap().keys() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let body = (method == Method::POST || method == Method::PATCH).then(|| json!({}));
            let (status, answer) = app.api(method.clone(), &path, body).await;
            assert_ne!(
                status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}: {answer}"
            );
            assert_ne!(
                answer["error"]["code"], "not_found",
                "{method} {path}: {answer}"
            );
        }
    }
}
