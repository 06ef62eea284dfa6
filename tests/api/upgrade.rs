//! Upgrades: a database written by the previous release (`fixtures/upgrade/v0.2.0.sql`, made
//! by `scripts/upgrade-fixture.sh v0.2.0` with that release's binary: events applied,
//! skipped, dead, received and failed, a queued outbound job) is served by this binary:
//! every migration applies, nothing queued is lost, the daemon serves and drains. The release
//! before it (`v0.1.0.sql`) too: an instance skipped a release.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use fake_stripe::{FakeConfig, FakeStripe};
use hyper::StatusCode;
use sqlx::PgPool;
use stripe_reconciler::config::Secret;

use crate::daemon::Daemon;
use crate::helpers::*;

const PREVIOUS: &str = "v0.2.0";
/// The release before the previous one.
const OLDER: &str = "v0.1.0";

fn dump(tag: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/upgrade/{tag}.sql"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (make it with scripts/upgrade-fixture.sh {tag})",
            path.display()
        )
    })
}

/// Restores a plain-SQL dump into `database_url` on one connection of its own (the dump
/// empties `search_path` for its session).
async fn restore(database_url: &str, sql: &str) {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(database_url)
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&pool)
        .await
        .expect("the dump restores");
    pool.close().await;
}

async fn event_states(pool: &PgPool) -> BTreeMap<String, String> {
    sqlx::query_as("SELECT id, state FROM events")
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// `(kind, job_key, state)` of every queue row.
async fn queue(pool: &PgPool) -> BTreeSet<(String, String, String)> {
    sqlx::query_as("SELECT kind, job_key, state FROM jobs")
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

fn migration_files() -> BTreeSet<i64> {
    std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.split('_').next()?.parse().ok()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_of_the_previous_release_migrates_keeps_its_queue_serves_and_drains() {
    upgrades_from(PREVIOUS).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_of_the_release_before_migrates_keeps_its_queue_serves_and_drains() {
    upgrades_from(OLDER).await;
}

async fn upgrades_from(release: &str) {
    let database_url = fresh_database().await;
    restore(&database_url, &dump(release)).await;
    let pool = PgPool::connect(&database_url).await.unwrap();

    // What the previous release left: every state, and queued work.
    let before = event_states(&pool).await;
    let states: BTreeSet<&str> = before.values().map(String::as_str).collect();
    for state in ["applied", "skipped", "dead", "received", "failed"] {
        assert!(
            states.contains(state),
            "the fixture has no {state} event: {before:?}"
        );
    }
    let queued_before = queue(&pool).await;
    let outbound: Vec<_> = queued_before
        .iter()
        .filter(|(kind, _, state)| kind == "stripe.create_customer" && state == "pending")
        .collect();
    assert_eq!(outbound.len(), 1, "{queued_before:?}");
    let applied_before: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();

    // This binary, with Stripe (the fake) for the queued outbound job.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stripe = FakeStripe::start(
        listener,
        FakeConfig {
            webhook_url: None,
            webhook_secret: None,
        },
    )
    .await;
    let stripe_url = stripe.url();
    let catalog = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/catalog.example.toml")
        .display()
        .to_string();
    let daemon = Daemon::spawn(
        &database_url,
        &[
            ("STRIPE_API_KEY", "sk_test_upgrade_7e21"),
            ("STRIPE_API_BASE", &stripe_url),
            ("RECONCILER_CATALOG", &catalog),
        ],
    );

    // Every migration of this binary applied, successfully.
    let applied: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(applied.iter().all(|(_, ok)| *ok), "{applied:?}");
    let versions: BTreeSet<i64> = applied.iter().map(|(v, _)| *v).collect();
    assert_eq!(versions, migration_files());
    assert!(versions.len() as i64 >= applied_before);

    // It serves: ready, and a new delivery is stored.
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let readyz = hyper::Request::get(daemon.url("/readyz"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    assert_eq!(
        client.request(readyz).await.unwrap().status(),
        StatusCode::OK
    );
    let (status, answer) = stripe_reconciler::cli::post_signed(
        &client,
        &daemon.url("/webhooks/stripe"),
        event_at("evt_after_upgrade", "product.created", "cus_none", now()).into(),
        &Secret::new(SECRET_OLD),
    )
    .await
    .unwrap();
    assert_eq!(status, StatusCode::OK, "{answer}");

    // It drains: nothing pending is left (the failed event was due a minute after the dump).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = 'pending'")
            .fetch_one(&pool)
            .await
            .unwrap();
        if pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} jobs still pending: {:?}",
            queue(&pool).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Nothing lost: every event of before is still there; what was queued (received, failed)
    // finished, what was finished stayed as it was; dead letters stay dead until retried.
    let after = event_states(&pool).await;
    for (id, was) in &before {
        let now = after.get(id).unwrap_or_else(|| panic!("{id} is gone"));
        match was.as_str() {
            "received" | "failed" => assert!(
                now == "applied" || now == "skipped",
                "{id} was {was}, is {now}"
            ),
            _ => assert_eq!(now, was, "{id}"),
        }
    }
    let dead_after: BTreeSet<_> = queue(&pool)
        .await
        .into_iter()
        .filter(|(_, _, state)| state == "dead")
        .collect();
    let dead_before: BTreeSet<_> = queued_before
        .iter()
        .filter(|(_, _, state)| state == "dead")
        .cloned()
        .collect();
    assert_eq!(dead_after, dead_before, "no new dead letter, none lost");
    assert_eq!(after["evt_after_upgrade"], "skipped");
    // The renewal that had failed applied, once more: its attempts went on from 2.
    let attempts: i32 =
        sqlx::query_scalar("SELECT attempts FROM events WHERE id = 'evt_RcnFixture0006'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(attempts, 3);
    // The queued outbound job ran: user_456 has a Stripe customer.
    let stripe_id: Option<String> =
        sqlx::query_scalar("SELECT stripe_id FROM customers WHERE id = 'user_456'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(
        stripe_id
            .as_deref()
            .is_some_and(|id| id.starts_with("cus_")),
        "the queued stripe.create_customer job did not run: user_456's stripe_id is {stripe_id:?}"
    );
    // user_123's cancellation, queued behind the failed renewal, is applied.
    let cancel_at_period_end: bool = sqlx::query_scalar(
        "SELECT cancel_at_period_end FROM customer_plans p JOIN customers c ON c.pk = p.customer_pk
         WHERE c.id = 'user_123' AND p.plan_id = 'pro'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(cancel_at_period_end);
}
