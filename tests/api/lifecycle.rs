//! The process as ops see it: the binary, signals, crashes, slow clients.

use std::process::Command;
use std::time::Duration;

use hyper::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::daemon::{BIN, Daemon};
use crate::helpers::*;

#[tokio::test]
async fn an_acknowledged_event_survives_kill_9() {
    let database_url = fresh_database().await;
    let mut daemon = Daemon::spawn(&database_url, &[]);
    let body = event("evt_survivor", "invoice.paid", "cus_1");
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let secret = stripe_reconciler::config::Secret::new(SECRET_OLD);
    let url = daemon.url("/webhooks/stripe");
    let (status, _) = stripe_reconciler::cli::post_signed(&client, &url, body.into(), &secret)
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK);

    daemon.kill(); // SIGKILL: no shutdown code runs

    let pool = sqlx::PgPool::connect(&database_url).await.unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE id = 'evt_survivor'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 1);
}

#[tokio::test]
async fn sigterm_stops_the_daemon_cleanly() {
    let database_url = fresh_database().await;
    let daemon = Daemon::spawn(&database_url, &[]);
    daemon.terminate();
    let exited = daemon.wait().await;
    assert!(exited.status.success(), "exit status {:?}", exited.status);
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish() {
    let app = TestApp::spawn().await;
    let body = event("evt_inflight", "invoice.paid", "cus_1");
    let sig = stripe_reconciler::stripe::signature::sign(
        &stripe_reconciler::config::Secret::new(SECRET_OLD),
        now(),
        &body,
    );
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /webhooks/stripe HTTP/1.1\r\nhost: x\r\nstripe-signature: {sig}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    app.shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stream.write_all(&body[10..]).await.unwrap();

    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    tokio::time::timeout(Duration::from_secs(10), app.handle)
        .await
        .expect("the app stops after draining")
        .unwrap()
        .unwrap();
    // New connections are refused once it has stopped.
    assert!(TcpStream::connect(app.addr).await.is_err());
}

#[tokio::test]
async fn slow_clients_cannot_pin_the_daemon() {
    let app = TestApp::spawn_with(|s| {
        s.http.max_connections = 2;
        s.http.header_read_timeout_ms = 300;
    })
    .await;
    // Two slow-loris connections fill every slot with a never-finished header.
    let mut lorises = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(app.addr).await.unwrap();
        s.write_all(b"POST /webhooks/stripe HTTP/1.1\r\nhost: x\r\n")
            .await
            .unwrap();
        lorises.push(s);
    }
    // A real client still gets served once the header timeout frees a slot.
    let (status, _) = tokio::time::timeout(
        Duration::from_secs(10),
        app.post_event(&event("evt_after_loris", "invoice.paid", "cus_1")),
    )
    .await
    .expect("served despite slow clients");
    assert_eq!(status, StatusCode::OK);
    // The slow connections were closed by the server.
    for mut s in lorises {
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "server closed the slow connection");
    }
}

#[tokio::test]
async fn replay_posts_every_fixture_and_prints_200s() {
    let app = TestApp::spawn().await;
    let files = fixture_files();
    assert!(files.len() >= 9, "fixtures present");
    let output = tokio::task::spawn_blocking({
        let url = app.url("/webhooks/stripe");
        let files = files.clone();
        move || {
            Command::new(BIN)
                .arg("replay")
                .args(&files)
                .args(["--to", &url, "--secret", SECRET_NEW])
                .env_clear()
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for file in &files {
        assert!(
            stdout.contains(&format!("200 {}", file.display())),
            "{stdout}"
        );
    }
    let stored = app.count("SELECT count(*) FROM events").await;
    assert_eq!(stored as usize, files.len());
    // Every fixture reads back through the API.
    for file in &files {
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        let id = json["id"].as_str().unwrap();
        let (status, body) = app.get(&format!("/v1/events/{id}"), Some(API_TOKEN)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["type"], json["type"]);
    }
}

#[test]
fn the_daemon_refuses_to_start_naming_what_is_missing() {
    for missing in [
        "DATABASE_URL",
        "STRIPE_WEBHOOK_SECRET",
        "RECONCILER_API_TOKEN",
    ] {
        let env = test_env("postgres://127.0.0.1:1/none");
        let output = Command::new(BIN)
            .arg("check-config")
            .env_clear()
            .envs(env.into_iter().filter(|(k, _)| k != missing))
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");
        assert!(stderr.contains(missing), "{stderr}");
    }
}

#[test]
fn check_config_never_prints_secrets() {
    let output = Command::new(BIN)
        .arg("check-config")
        .env_clear()
        .envs(test_env("postgres://user:db-password-91@127.0.0.1:1/none"))
        .output()
        .unwrap();
    assert!(output.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for secret in [SECRET_OLD, SECRET_NEW, API_TOKEN, "db-password-91"] {
        assert!(!all.contains(secret), "{secret} leaked");
    }
}
