//! Upgrades: a database written by the previous release (`fixtures/upgrade/v0.3.0.sql`, made
//! by `scripts/upgrade-fixture.sh v0.3.0` with that release's binary: events applied,
//! skipped, dead, received and failed, a queued outbound job) is served by this binary:
//! every migration applies, nothing queued is lost, the daemon serves and drains. The releases
//! before it (`v0.2.0.sql`, `v0.1.0.sql`) too: an instance skipped releases. And v0.2.0's
//! calls of our SQL functions still run on this schema, as they did while an instance of it
//! ran beside one upgraded to v0.3.0 (docs/RUNBOOK.md, Upgrade).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use fake_stripe::{FakeConfig, FakeStripe};
use hyper::StatusCode;
use sqlx::PgPool;
use stripe_reconciler::config::Secret;
use stripe_reconciler::db;

use crate::daemon::Daemon;
use crate::helpers::*;

const PREVIOUS: &str = "v0.3.0";
/// The releases before the previous one.
const OLDER: [&str; 2] = ["v0.2.0", "v0.1.0"];

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
    upgrades_from(OLDER[0]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_of_the_first_release_migrates_keeps_its_queue_serves_and_drains() {
    upgrades_from(OLDER[1]).await;
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

/// v0.2.0's statements that call our functions, verbatim, with its binds' types: migrations
/// 30-35 replaced or changed four of these functions and the plan trigger their writes go
/// through, and the RUNBOOK says a v0.2.0 instance keeps working beside them. Each must still
/// find its function (a call with 20 arguments, say, finds the 22-argument
/// `apply_subscription_state` through its defaults), answer what v0.2.0 reads, and write as
/// before, timeline entries included.
#[tokio::test]
async fn release_0_2_0s_calls_of_our_functions_run_on_this_schema() {
    let url = fresh_database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    db::migrate(&pool).await.expect("migrations run");
    let customer_pk: i64 = sqlx::query_scalar(
        "INSERT INTO customers (id, stripe_id) VALUES ('user_v020', 'cus_v020') RETURNING pk",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let created = 1_796_533_370_i64;
    let mut conn = pool.acquire().await.unwrap();

    // store::plans::activate_default (v0.2.0): the group's default plan.
    sqlx::query("SELECT activate_default_plan($1, $2, $3, $4, $5, $6)")
        .bind(customer_pk)
        .bind("free")
        .bind(Some("main"))
        .bind(false)
        .bind(at(created - 100))
        .bind(false)
        .execute(&mut *conn)
        .await
        .expect("activate_default_plan($1..$6)");

    // store::plans::sync_subscription (v0.2.0): the first state of a subscription, applied.
    let sync = sqlx::query_as(
        "SELECT * FROM sync_subscription_state($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
                 $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)",
    );
    let (verdict, tied, held_plan, held_status): (String, bool, Vec<String>, Vec<String>) =
        bind_state_v020(sync, customer_pk, "active", created)
            .bind(3_i32)
            .bind("digest-active".to_owned())
            .bind(false)
            .bind(false)
            .fetch_one(&mut *conn)
            .await
            .map(|row: SyncAnswer| (row.verdict, row.tied, row.held_plan, row.held_status))
            .expect("sync_subscription_state($1..$24)");
    assert_eq!((verdict.as_str(), tied), ("applied", false));
    assert_eq!(held_plan, ["pro"], "the paid plan replaced the default one");
    assert_eq!(held_status, ["active"]);

    // store::plans::apply_state (v0.2.0's scheduled path): 20 arguments, a later state.
    let apply = sqlx::query_as(
        "SELECT held_plan, held_status FROM apply_subscription_state($1, $2, $3, $4, $5, $6, $7,
             $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
    );
    let held: (Vec<String>, Vec<String>) =
        bind_state_v020(apply, customer_pk, "past_due", created + 1)
            .fetch_one(&mut *conn)
            .await
            .expect("apply_subscription_state($1..$20)");
    assert_eq!(held, (vec!["pro".to_owned()], vec!["past_due".to_owned()]));

    // store::plans::settle_group (v0.2.0), and the attach follow (store::attaches).
    sqlx::query("SELECT settle_group($1, $2, $3, $4, $5, $6, $7)")
        .bind(customer_pk)
        .bind("main")
        .bind(None::<i64>)
        .bind(at(created + 2))
        .bind(Some("free"))
        .bind(false)
        .bind(false)
        .execute(&mut *conn)
        .await
        .expect("settle_group($1..$7)");
    sqlx::query("SELECT follow_subscription($1)")
        .bind("sub_v020")
        .execute(&mut *conn)
        .await
        .expect("follow_subscription($1)");

    // The timeline saw v0.2.0's writes (its plan trigger still writes for a binary that never
    // asks to write the entries itself): the default attached, the paid plan attached, the
    // default ended by it, then the paid plan past due.
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM activity WHERE customer_pk = $1 ORDER BY id")
            .bind(customer_pk)
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    assert_eq!(
        kinds,
        [
            "plan.attached",
            "plan.attached",
            "plan.expired",
            "plan.status"
        ],
        "the timeline of v0.2.0's writes"
    );

    // outbox::queue::claim (v0.2.0): the claim function, its arguments and answer.
    sqlx::query(
        "INSERT INTO jobs (kind, job_key, ordering_key, sort_key, args)
         VALUES ('stripe.create_customer', 'user_v020', 'user_v020', 1, '{}')",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    let mut tx = pool.begin().await.unwrap();
    let claimed: Vec<ClaimedV020> = sqlx::query_as(
        "SELECT id, kind, job_key, ordering_key, args, attempts, enqueued_at FROM claim_jobs($1)",
    )
    .bind(10_i64)
    .fetch_all(&mut *tx)
    .await
    .expect("claim_jobs($1)");
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        (claimed[0].kind.as_str(), claimed[0].job_key.as_str()),
        ("stripe.create_customer", "user_v020")
    );
    tx.rollback().await.unwrap();
    drop(conn);
    pool.close().await;
}

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).unwrap()
}

/// v0.2.0's `bind_state` (store::plans): the 20 arguments its calls of
/// `sync_subscription_state` and `apply_subscription_state` begin with, with its types, for
/// a state of subscription `sub_v020` on plan `pro` (group `main`, default `free`) made at
/// `created`.
fn bind_state_v020<'q, O>(
    query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    customer_pk: i64,
    status: &'q str,
    created: i64,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    let (period_start, period_end) = (at(1_796_000_000), at(1_798_600_000));
    query
        .bind("sub_v020")
        .bind(customer_pk)
        .bind("pro")
        .bind(Some("main".to_owned()))
        .bind(false)
        .bind(Some("free".to_owned()))
        .bind(false)
        .bind(status)
        .bind(status)
        .bind(Some(period_start))
        .bind(Some(period_end))
        .bind(false)
        .bind(None::<DateTime<Utc>>)
        .bind(None::<DateTime<Utc>>)
        .bind(Some(period_start))
        .bind(None::<DateTime<Utc>>)
        .bind(1_i32)
        .bind(None::<DateTime<Utc>>)
        .bind(created)
        .bind(at(created))
}

/// What v0.2.0 read of `sync_subscription_state`'s answer (the held arrays it went on with).
#[derive(sqlx::FromRow)]
struct SyncAnswer {
    verdict: String,
    tied: bool,
    held_plan: Vec<String>,
    held_status: Vec<String>,
}

/// A claimed job as v0.2.0 read it.
#[derive(sqlx::FromRow)]
#[allow(dead_code)] // every column is decoded, as v0.2.0 did; the test reads two
struct ClaimedV020 {
    id: i64,
    kind: String,
    job_key: String,
    ordering_key: Option<String>,
    args: Option<serde_json::Value>,
    attempts: i32,
    enqueued_at: DateTime<Utc>,
}
