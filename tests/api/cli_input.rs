//! Issue 24, defect 13: bad input to the CLI exits 2 with one line, before anything is
//! changed: never a panic (101), never a failure (1), never a success (0).

use std::process::Command;

use crate::helpers::*;
use crate::rewards::subscribed;
use crate::stripe_side::{STRIPE_KEY, World};

fn run(w: &World, args: &[&str]) -> (Option<i32>, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stripe-reconciler"));
    command
        .args(args)
        .env_clear()
        .env("DATABASE_URL", &w.app.database_url)
        .env("STRIPE_API_KEY", STRIPE_KEY)
        .env("STRIPE_API_BASE", w.stripe.url())
        .env(
            "RECONCILER_CATALOG",
            fixtures_dir().join("../config/catalog.example.toml"),
        );
    let out = tokio::task::block_in_place(|| command.output().unwrap());
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_exits_2_with_one_line_and_changes_nothing() {
    let w = World::new().await;
    subscribed(&w, "u_c13", "pro").await;
    let changes_before = w.app.count("SELECT count(*) FROM plan_changes").await;
    let endpoints_before = w.stripe.webhook_endpoints().len();
    let cases: [&[&str]; 8] = [
        &["catch-up", "--since", "1ü"],
        &["events", "replay", "--since", "5日"],
        &[
            "customers",
            "quantity",
            "u_c13",
            "pro",
            "3",
            "--wait",
            "18446744073709551615",
        ],
        &[
            "customers",
            "timeline",
            "u_c13",
            "--cursor=-1000000000000000000_1",
        ],
        &["customers", "list", "--limit=-1"],
        &["events", "list", "--limit=-1"],
        &["events", "list", "--state", "bogus"],
        &["setup-webhook", "--url", "http://x y"],
    ];
    for args in cases {
        let (code, stdout, stderr) = run(&w, args);
        assert_eq!(code, Some(2), "{args:?}: {stdout}{stderr}");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{args:?}: one line: {stderr}"
        );
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
    }
    let changes = w.app.count("SELECT count(*) FROM plan_changes").await;
    assert_eq!(changes, changes_before, "no plan change recorded");
    assert_eq!(
        w.stripe.webhook_endpoints().len(),
        endpoints_before,
        "no endpoint made"
    );
    // Good input still works.
    let (code, stdout, stderr) = run(
        &w,
        &["events", "list", "--state", "applied", "--limit", "1"],
    );
    assert_eq!(code, Some(0), "{stdout}{stderr}");
}
