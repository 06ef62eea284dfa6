//! The daemon's JSON logs at `RUST_LOG=debug`: every line parses, every line about an
//! event's processing names the event, and no configured secret appears anywhere.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use hyper::StatusCode;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use stripe_reconciler::cli::{HttpClient, post_signed};
use stripe_reconciler::config::Secret;

use crate::daemon::Daemon;
use crate::helpers::*;

const DB_PASSWORD: &str = "db-password-c41e";

/// `postgres://user@host/db` with a password; the scratch server trusts any.
fn with_password(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (user, host) = rest.split_once('@').unwrap();
    let user = user.split(':').next().unwrap();
    format!("{scheme}://{user}:{DB_PASSWORD}@{host}")
}

async fn get(client: &HttpClient, url: &str, token: &str) -> StatusCode {
    let req = hyper::Request::get(url)
        .header("authorization", format!("Bearer {token}"))
        .body(http_body_util::Full::new(Bytes::new()))
        .unwrap();
    client.request(req).await.unwrap().status()
}

/// Waits (at most 30 s) until every stored event reached a final state.
async fn wait_processed(pool: &sqlx::PgPool, expected: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let done: i64 =
            sqlx::query_scalar("SELECT count(*) FROM events WHERE state IN ('applied', 'skipped')")
                .fetch_one(pool)
                .await
                .unwrap();
        if done == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{done} of {expected} processed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn json_logs_name_the_event_on_every_processing_line_and_leak_no_secret() {
    let database_url = fresh_database().await;
    let daemon = Daemon::spawn(
        &database_url,
        &[
            ("DATABASE_URL", &with_password(&database_url)),
            ("RECONCILER_LOG_FORMAT", "json"),
            ("RUST_LOG", "debug"),
        ],
    );
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let webhook = daemon.url("/webhooks/stripe");

    // Every fixture, signed with each secret in turn; a forged delivery; authorized reads.
    let mut ids = BTreeSet::new();
    for (i, file) in fixture_files().into_iter().enumerate() {
        let body = std::fs::read(&file).unwrap();
        let json: Value = serde_json::from_slice(&body).unwrap();
        ids.insert(json["id"].as_str().unwrap().to_owned());
        let secret = Secret::new([SECRET_OLD, SECRET_NEW][i % 2]);
        let (status, answer) = post_signed(&client, &webhook, body.into(), &secret)
            .await
            .unwrap();
        assert_eq!(status, StatusCode::OK, "{}: {answer}", file.display());
    }
    let forged = event("evt_logs_forged", "invoice.paid", "cus_1");
    let (status, _) = post_signed(&client, &webhook, forged.into(), &Secret::new("whsec_x"))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let first = ids.first().unwrap();
    let event_url = daemon.url(&format!("/v1/events/{first}"));
    assert_eq!(get(&client, &event_url, API_TOKEN).await, StatusCode::OK);
    assert_eq!(
        get(&client, &daemon.url("/metrics"), API_TOKEN).await,
        StatusCode::OK
    );

    let pool = sqlx::PgPool::connect(&database_url).await.unwrap();
    wait_processed(&pool, ids.len() as i64).await;
    pool.close().await;
    daemon.terminate();
    let exited = daemon.wait().await;
    assert!(exited.status.success(), "{:?}", exited.status);

    // (a) No secret anywhere, in any form we were given it.
    let all = exited.stderr.join("\n");
    for secret in [SECRET_OLD, SECRET_NEW, API_TOKEN, DB_PASSWORD] {
        assert!(!all.contains(secret), "{secret} leaked into the logs");
    }
    // (c) One JSON object per line.
    let lines: Vec<Value> = exited
        .stderr
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    // (b) Every line about processing an event carries its id and type.
    let mut logged = BTreeSet::new();
    for line in &lines {
        let message = line["message"].as_str().unwrap_or_default();
        if !["applied", "skipped", "event stored"].contains(&message) {
            continue;
        }
        let (id, event_type) = (&line["span"]["event_id"], &line["span"]["event_type"]);
        assert!(id.is_string() && event_type.is_string(), "{line}");
        if message != "event stored" {
            logged.insert(id.as_str().unwrap().to_owned());
        }
    }
    assert_eq!(logged, ids, "a processing line for every fixture");
}
