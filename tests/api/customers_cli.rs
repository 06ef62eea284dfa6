//! `stripe-reconciler customers ...`, run as the real binary with only DATABASE_URL and the
//! catalog: the API's answers with `--json`, tables without, refusals in the API's words
//! (exit 2), and plan changes carried out by the daemon's workers as the CLI's.

use std::process::{Command, Output};

use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::stripe_side::World;

fn cli(database_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stripe-reconciler"))
        .arg("customers")
        .args(args)
        .env_clear()
        .env("DATABASE_URL", database_url)
        .env(
            "RECONCILER_CATALOG",
            fixtures_dir().join("../config/catalog.example.toml"),
        )
        .output()
        .unwrap()
}

fn ok(database_url: &str, args: &[&str]) -> String {
    let output = cli(database_url, args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{args:?}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn ok_json(database_url: &str, args: &[&str]) -> Value {
    serde_json::from_str(&ok(database_url, args)).unwrap()
}

#[tokio::test]
async fn the_cli_answers_as_the_api_and_edits_as_cli() {
    let w = World::new().await;
    w.paying_customer("u_cli").await;
    let (status, _) = w
        .app
        .api(
            Method::PATCH,
            "/v1/customers/u_cli",
            Some(json!({"name": "Cli Person", "email": "cli@example.test"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let body = json!({"customer_id": "u_cli", "plan_id": "team", "quantity": 2,
                      "success_url": "https://a.test/", "cancel_url": "https://a.test/"});
    w.app.api(Method::POST, "/v1/attach", Some(body)).await;
    w.drain().await;
    let db = w.app.database_url.as_str();

    // list and show: the API's answers, byte for byte as JSON values.
    let listed = ok_json(db, &["list", "--search", "cli@example", "--json"]);
    let (_, api_list) = w
        .app
        .api(
            Method::GET,
            "/v1/customers?search=cli%40example&limit=20",
            None,
        )
        .await;
    assert_eq!(listed, api_list);
    assert_eq!(listed["data"][0]["id"], "u_cli");
    let table = ok(db, &["list", "--plan", "team"]);
    assert!(
        table.contains("u_cli") && table.contains("team (active)"),
        "{table}"
    );
    let shown = ok_json(db, &["show", "u_cli", "--json"]);
    assert_eq!(shown, w.customer("u_cli").await);
    let text = ok(db, &["show", "u_cli"]);
    assert!(
        text.contains("Cli Person") && text.contains("team"),
        "{text}"
    );

    // A balance edit, recorded as the CLI's.
    let edited = ok_json(
        db,
        &[
            "balance",
            "u_cli",
            "messages",
            "grant",
            "50",
            "--reason",
            "goodwill",
            "--idempotency-key",
            "cli-1",
            "--json",
        ],
    );
    assert_eq!(edited["balance"], 4050, "2 × 2000 + 50: {edited}");
    let again = ok_json(
        db,
        &[
            "balance",
            "u_cli",
            "messages",
            "grant",
            "50",
            "--idempotency-key",
            "cli-1",
            "--json",
        ],
    );
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["balance"], 4050);

    // A plan change: recorded here, carried out by the workers (drained by the test).
    let recorded = ok_json(
        db,
        &["quantity", "u_cli", "team", "3", "--wait", "0", "--json"],
    );
    assert_eq!(recorded["state"], "pending", "{recorded}");
    assert_eq!(recorded["requested_by"], "cli");
    w.drain().await;
    let id = recorded["id"].as_str().unwrap();
    let (_, done) = w
        .app
        .api(Method::GET, &format!("/v1/plan_changes/{id}"), None)
        .await;
    assert_eq!(done["outcome"], "quantity", "{done}");
    let sub = done["stripe_subscription_id"].as_str().unwrap();
    let stripe = w
        .stripe
        .subscriptions()
        .into_iter()
        .find(|s| s["id"] == sub)
        .unwrap();
    assert_eq!(stripe["items"]["data"][0]["quantity"], 3);

    let timeline = ok_json(db, &["timeline", "u_cli", "--limit", "100", "--json"]);
    let entries = timeline["data"].as_array().unwrap();
    let grant = entries
        .iter()
        .find(|e| e["kind"] == "balance.grant")
        .unwrap();
    assert_eq!(
        (&grant["who"], &grant["source"]),
        (&json!("cli"), &json!("cli"))
    );
    let counted = entries
        .iter()
        .find(|e| e["kind"] == "plan.quantity")
        .unwrap();
    assert_eq!(counted["source"], "cli", "{counted}");
    let table = ok(db, &["timeline", "u_cli"]);
    assert!(
        table.contains("balance.grant") && table.contains("reason=goodwill"),
        "{table}"
    );
}

#[tokio::test]
async fn refusals_exit_2_with_the_apis_words() {
    let app = TestApp::spawn().await;
    app.create_customer(json!({"id": "u_cli2"})).await;
    let db = app.database_url.as_str();
    for (args, words) in [
        (vec!["show", "nobody"], "customer nobody not found"),
        (
            vec!["cancel", "u_cli2", "business"],
            "customer u_cli2's plan business not found",
        ),
        (vec!["uncancel", "u_cli2", "free"], "not set to cancel"),
        (
            vec!["quantity", "u_cli2", "free", "0"],
            "quantity` must be between 1 and 1000000",
        ),
        (
            vec!["quantity", "u_cli2", "free", "2000000"],
            "quantity` must be between 1 and 1000000",
        ),
        (
            vec!["balance", "u_cli2", "nothing", "grant", "5"],
            "feature nothing not found",
        ),
        (
            vec!["list", "--status", "sleeping"],
            "must be a plan status",
        ),
    ] {
        let output = cli(db, &args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(words), "{args:?}: {stderr}");
    }
}
