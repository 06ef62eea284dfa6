//! The ops commands, run as the real binary with only DATABASE_URL.

use std::process::Command;

use serde_json::Value;

use crate::helpers::*;

fn ops(database_url: &str, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_stripe-reconciler"))
        .args(args)
        .env_clear()
        .env("DATABASE_URL", database_url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{args:?}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn ops_json(database_url: &str, args: &[&str]) -> Value {
    serde_json::from_str(&ops(database_url, args)).unwrap()
}

#[tokio::test]
async fn status_list_show_replay_and_retry() {
    let app = TestApp::spawn().await;
    let db = app.database_url.as_str();
    for name in ["invoice.paid", "invoice.created", "product.created"] {
        let body = std::fs::read(fixtures_dir().join(format!("{name}.json"))).unwrap();
        app.post_event(&body).await;
    }
    let status = ops_json(db, &["status", "--json"]);
    assert_eq!(status["events"]["received"], 3);
    assert_eq!(status["pending"], 3);
    assert!(status["oldest_pending_secs"].as_f64().unwrap() >= 0.0);

    app.engine.run_until_idle().await.unwrap();
    let status = ops_json(db, &["status", "--json"]);
    assert_eq!(status["events"]["skipped"], 3, "{status}");
    assert_eq!(status["pending"], 0);
    assert!(status["oldest_pending_secs"].is_null());
    let table = ops(db, &["status"]);
    assert!(
        table.contains("events skipped") && table.contains("dead letters"),
        "{table}"
    );

    let listed = ops_json(
        db,
        &[
            "events", "list", "--state", "skipped", "--limit", "2", "--json",
        ],
    );
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let listed = ops_json(db, &["events", "list", "--type", "invoice.paid", "--json"]);
    assert_eq!(listed[0]["id"], "evt_RcnFixture0007");
    let table = ops(db, &["events", "list"]);
    assert!(
        table.starts_with("id") && table.contains("evt_RcnFixture0009"),
        "{table}"
    );

    let shown = ops_json(
        db,
        &[
            "events",
            "show",
            "evt_RcnFixture0007",
            "--payload",
            "--json",
        ],
    );
    assert_eq!(shown["state"], "skipped");
    assert_eq!(shown["payload"]["data"]["object"]["object"], "invoice");

    let replayed = ops(
        db,
        &[
            "events",
            "replay",
            "--since",
            "1h",
            "--type",
            "invoice.paid",
        ],
    );
    assert!(replayed.starts_with("1 events queued"), "{replayed}");
    assert_eq!(app.count("SELECT count(*) FROM jobs").await, 1);
    app.engine.run_until_idle().await.unwrap();
    assert_eq!(
        app.count("SELECT attempts::bigint FROM events WHERE id = 'evt_RcnFixture0007'")
            .await,
        2
    );

    // A dead letter goes back to pending with `events retry --dead`.
    app.post_event(&event("evt_dead", "invoice.paid", "cus_d"))
        .await;
    sqlx::query("UPDATE jobs SET state = 'dead' WHERE job_key = 'evt_dead'")
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(ops_json(db, &["status", "--json"])["dead"], 1);
    let retried = ops(db, &["events", "retry", "--dead"]);
    assert!(retried.starts_with("1 queued"), "{retried}");
    assert_eq!(
        app.count("SELECT count(*) FROM jobs WHERE state = 'pending'")
            .await,
        1
    );
}

#[test]
fn ops_commands_need_only_the_database_url() {
    let output = Command::new(env!("CARGO_BIN_EXE_stripe-reconciler"))
        .args(["status"])
        .env_clear()
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
    assert!(!stderr.contains("STRIPE_WEBHOOK_SECRET"), "{stderr}");
}

/// `check-config` with a full daemon environment plus `extra`; returns (success, stderr).
fn check_config(extra: &[(&str, &str)]) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stripe-reconciler"));
    command
        .arg("check-config")
        .env_clear()
        .env("DATABASE_URL", "postgres://u:hunter2@127.0.0.1:1/db")
        .env("STRIPE_WEBHOOK_SECRET", SECRET_OLD)
        .env("RECONCILER_API_TOKEN", API_TOKEN);
    for (name, value) in extra {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn check_config_refuses_a_listen_port_that_is_not_a_number() {
    let (ok, stderr) = check_config(&[("RECONCILER_LISTEN", "127.0.0.1:notaport")]);
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("`listen`"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");

    let dir = std::env::temp_dir().join(format!("rc-ops-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("listen.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:notaport\"\n").unwrap();
    let (ok, stderr) = check_config(&[("RECONCILER_CONFIG", file.to_str().unwrap())]);
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("`listen`"), "{stderr}");
}

#[test]
fn check_config_refuses_a_database_url_that_is_not_postgres_and_never_prints_it() {
    let (ok, stderr) = check_config(&[("DATABASE_URL", "mysql://u:hunter2@127.0.0.1/db")]);
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("database_url"), "{stderr}");
    assert!(stderr.contains("postgres://"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
}

#[test]
fn check_config_refuses_a_live_key_with_test_livemode() {
    let dir = std::env::temp_dir().join(format!("rc-ops-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("mode.toml");
    std::fs::write(&file, "[stripe]\nlivemode = false\n").unwrap();
    let (ok, stderr) = check_config(&[
        ("RECONCILER_CONFIG", file.to_str().unwrap()),
        ("STRIPE_API_KEY", "sk_live_do_not_print"),
    ]);
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("stripe.livemode"), "{stderr}");
    assert!(!stderr.contains("do_not_print"), "{stderr}");
    let (ok, stderr) = check_config(&[("STRIPE_API_KEY", "sk_live_do_not_print")]);
    assert!(ok, "a live key alone is fine: {stderr}");
}
