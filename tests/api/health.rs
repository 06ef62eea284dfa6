use hyper::StatusCode;
use stripe_reconciler::db;

use crate::helpers::*;

#[tokio::test]
async fn healthz_and_readyz_answer_when_migrated() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/healthz", None).await.0, StatusCode::OK);
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn readyz_is_503_until_migrations_are_applied() {
    let database_url = fresh_database().await;
    let settings = test_settings(&database_url);
    let pool = db::pool(&settings).unwrap();
    // Build and serve without migrating, as `serve --no-migrate` would.
    let app = TestApp::start(settings, pool.clone(), database_url).await;
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "not_ready");
    assert_eq!(app.get("/healthz", None).await.0, StatusCode::OK);

    db::migrate(&pool).await.unwrap();
    assert_eq!(app.get("/readyz", None).await.0, StatusCode::OK);
}
