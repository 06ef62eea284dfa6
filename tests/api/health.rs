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
async fn readyz_is_503_while_a_migration_is_not_applied() {
    let app = TestApp::spawn().await;
    let latest: i64 = sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE _sqlx_migrations SET success = false WHERE version = $1")
        .bind(latest)
        .execute(&app.pool)
        .await
        .unwrap();

    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "not_ready");
    assert_eq!(app.get("/healthz", None).await.0, StatusCode::OK);

    sqlx::query("UPDATE _sqlx_migrations SET success = true WHERE version = $1")
        .bind(latest)
        .execute(&app.pool)
        .await
        .unwrap();
    assert!(db::migrations_applied(&app.pool).await.unwrap());
    assert_eq!(app.get("/readyz", None).await.0, StatusCode::OK);
}
