//! The outbox engine: exactly once, per-customer order, retries, dead letters, wake-ups.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper::StatusCode;
use outbox::{
    Done, Engine, EventHandler, Job, JobError, Lease, LeasedJob, Outcome, Registry, StoredEvent,
    Wakeup, queue,
};
use serde::{Deserialize, Serialize};
use sqlx::{Connection, PgConnection, PgPool};
use stripe_reconciler::db;

use crate::helpers::*;

const TYPE: &str = "test.effect";

/// Records each application in `effects`; fails on purpose for some objects:
/// ids with `poison` permanently until cured, `flaky` with a retryable error, `panic` by panicking,
/// `unreadable` with a payload that does not parse (as its type).
/// Each application's start and end (`clock_timestamp()`) are recorded; ids with `slow`
/// sleep 5 ms inside it.
/// It also proves exclusion: two events of one customer at once would fail the advisory lock
/// (keyed by the test's database too: advisory locks are the whole server's, and other tests'
/// customers share names).
struct Recorder;

impl EventHandler for Recorder {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<Outcome, JobError> {
        CALLS.lock().unwrap().push(event.id.clone());
        if event.id.contains("unreadable") {
            #[derive(Deserialize)]
            struct Required {
                #[serde(rename = "not_in_any_payload")]
                _field: String,
            }
            event.parse::<Required>()?;
        }
        {
            let customer = event.subject_id.clone().unwrap_or_default();
            let started: chrono::DateTime<chrono::Utc> =
                sqlx::query_scalar("SELECT clock_timestamp()")
                    .fetch_one(&mut *conn)
                    .await?;
            let exclusive: bool = sqlx::query_scalar(
                "SELECT pg_try_advisory_xact_lock(hashtext(current_database() || ':' || $1))",
            )
            .bind(&customer)
            .fetch_one(&mut *conn)
            .await?;
            if event.id.contains("poison") {
                let cured: bool =
                    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM cures WHERE event_id = $1)")
                        .bind(&event.id)
                        .fetch_one(&mut *conn)
                        .await?;
                if !cured {
                    return Err(JobError::reject("poisoned on purpose"));
                }
            }
            if event.id.contains("flaky") {
                return Err(JobError::retryable(anyhow::anyhow!("flaky on purpose")));
            }
            if event.id.contains("panic") {
                panic!("handler bug on purpose");
            }
            if event.id.contains("slow") {
                sqlx::query("SELECT pg_sleep(0.005)")
                    .execute(&mut *conn)
                    .await?;
            }
            sqlx::query(
                "INSERT INTO effects (event_id, customer_id, created, exclusive, started, ended)
                 VALUES ($1, $2, $3, $4, $5, clock_timestamp())",
            )
            .bind(&event.id)
            .bind(&customer)
            .bind(event.created)
            .bind(exclusive)
            .bind(started)
            .execute(&mut *conn)
            .await?;
            Ok(Outcome::Applied)
        }
    }
}

/// An outbound job that counts its runs in `effects` as part of its completion.
#[derive(Serialize, Deserialize)]
struct CountingJob {}

impl Job for CountingJob {
    const KIND: &'static str = "test.count";
    type Context = ();

    fn key(&self) -> String {
        "job_1".to_owned()
    }

    fn ordering_key(&self) -> Option<String> {
        None
    }

    async fn run(&self, _: &(), lease: Lease<'_>) -> Result<Done, JobError> {
        let mut tx = lease.pool().begin().await?;
        sqlx::query("INSERT INTO effects (event_id, customer_id, created, exclusive) VALUES ($1, '', 0, true)")
            .bind(lease.key())
            .execute(&mut *tx)
            .await?;
        lease.complete(tx).await
    }
}

fn registry() -> Registry {
    Registry::default()
        .on_event(TYPE, Recorder)
        .on_job::<CountingJob>(Arc::new(()))
}

async fn spawn(customize: impl FnOnce(&mut stripe_reconciler::config::Settings)) -> TestApp {
    let app = TestApp::spawn_with_registry(customize, registry()).await;
    create_test_tables(&app.pool).await;
    app
}

async fn create_test_tables(pool: &PgPool) {
    for sql in [
        "CREATE TABLE effects (seq bigserial PRIMARY KEY, event_id text NOT NULL,
             customer_id text NOT NULL, created bigint NOT NULL, exclusive boolean NOT NULL,
             started timestamptz NOT NULL DEFAULT clock_timestamp(),
             ended timestamptz NOT NULL DEFAULT clock_timestamp())",
        "CREATE TABLE cures (event_id text PRIMARY KEY)",
    ] {
        sqlx::query(sql).execute(pool).await.unwrap();
    }
}

async fn state_of(app: &TestApp, id: &str) -> serde_json::Value {
    let (status, body) = app.get(&format!("/v1/events/{id}"), Some(API_TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn events_are_applied_once_and_unknown_types_are_skipped() {
    let app = spawn(|_| {}).await;
    app.post_event(&event("evt_a", TYPE, "cus_1")).await;
    app.post_event(&event(
        "evt_unknown",
        "radar.early_fraud_warning.created",
        "cus_1",
    ))
    .await;

    assert_eq!(app.engine.run_until_idle().await.unwrap(), 2);
    // A redelivery after application changes nothing.
    app.post_event(&event("evt_a", TYPE, "cus_1")).await;
    app.engine.run_until_idle().await.unwrap();

    assert_eq!(app.count("SELECT count(*) FROM effects").await, 1);
    let a = state_of(&app, "evt_a").await;
    assert_eq!(
        (a["state"].as_str(), a["attempts"].as_i64()),
        (Some("applied"), Some(1))
    );
    let unknown = state_of(&app, "evt_unknown").await;
    assert_eq!(unknown["state"], "skipped");
    assert!(
        unknown["last_error"]
            .as_str()
            .unwrap()
            .contains("no handler")
    );
    assert_eq!(
        app.count("SELECT count(*) FROM jobs").await,
        0,
        "finished work leaves the queue"
    );
}

#[tokio::test]
async fn a_poisoned_event_goes_dead_and_applies_after_retry_with_the_cause_fixed() {
    let app = spawn(|_| {}).await;
    app.post_event(&event("evt_poison", TYPE, "cus_p")).await;
    app.engine.run_until_idle().await.unwrap();

    let dead = state_of(&app, "evt_poison").await;
    assert_eq!(dead["state"], "dead");
    assert_eq!(dead["attempts"], 1, "permanent errors are not retried");
    assert!(
        dead["last_error"]
            .as_str()
            .unwrap()
            .contains("poisoned on purpose")
    );
    // A dead letter does not block the customer's later events.
    app.post_event(&event_at("evt_after", TYPE, "cus_p", 1_795_000_100))
        .await;
    app.engine.run_until_idle().await.unwrap();
    assert_eq!(state_of(&app, "evt_after").await["state"], "applied");

    sqlx::query("INSERT INTO cures VALUES ('evt_poison')")
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        queue::retry(&app.pool, Some("evt_poison")).await.unwrap(),
        1
    );
    app.engine.run_until_idle().await.unwrap();

    assert_eq!(state_of(&app, "evt_poison").await["state"], "applied");
    assert_eq!(app.count("SELECT count(*) FROM effects").await, 2);
}

#[tokio::test]
async fn a_failure_inside_a_batch_leaves_its_neighbours_applied_once() {
    // One claim takes all six; the first three apply before the poisoned one fails. The
    // batch's first, savepoint-free attempt must roll their effects back, and the careful
    // rerun must apply them once and record the failure.
    let app = spawn(|_| {}).await;
    for n in 0..6 {
        let id = if n == 3 {
            "evt_b3_poison".to_owned()
        } else {
            format!("evt_b{n}")
        };
        let body = event_at(&id, TYPE, &format!("cus_b{n}"), 1_795_000_000 + n);
        assert_eq!(app.post_event(&body).await.0, StatusCode::OK);
    }
    app.engine.run_until_idle().await.unwrap();

    assert_eq!(app.count("SELECT count(*) FROM effects").await, 5);
    assert_eq!(
        app.count("SELECT count(DISTINCT event_id) FROM effects")
            .await,
        5
    );
    assert_eq!(
        app.count("SELECT count(*) FROM events WHERE state = 'applied' AND attempts = 1")
            .await,
        5,
        "a rolled-back attempt is not counted"
    );
    let dead = state_of(&app, "evt_b3_poison").await;
    assert_eq!(
        (dead["state"].as_str(), dead["attempts"].as_i64()),
        (Some("dead"), Some(1))
    );
}

#[tokio::test]
async fn a_panicking_handler_is_a_dead_letter_not_a_crash() {
    let app = spawn(|_| {}).await;
    app.post_event(&event("evt_panic", TYPE, "cus_x")).await;
    app.post_event(&event("evt_fine", TYPE, "cus_y")).await;
    app.engine.run_until_idle().await.unwrap();
    let dead = state_of(&app, "evt_panic").await;
    assert_eq!(dead["state"], "dead");
    assert!(dead["last_error"].as_str().unwrap().contains("panicked"));
    assert_eq!(state_of(&app, "evt_fine").await["state"], "applied");
}

#[tokio::test]
async fn retryable_failures_back_off_then_become_dead_letters() {
    let app = spawn(|s| {
        s.engine.max_attempts = 3;
        s.engine.retry_initial_ms = 60_000;
        s.engine.retry_max_secs = 600;
    })
    .await;
    app.post_event(&event("evt_flaky", TYPE, "cus_f")).await;

    app.engine.run_until_idle().await.unwrap();
    let failed = state_of(&app, "evt_flaky").await;
    assert_eq!(
        (failed["state"].as_str(), failed["attempts"].as_i64()),
        (Some("failed"), Some(1))
    );
    let delay: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM run_at - now())::float8 FROM jobs WHERE job_key = 'evt_flaky'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(
        (25.0..=95.0).contains(&delay),
        "the retry waits 60 s ± 50 %: {delay}"
    );
    assert_eq!(
        app.engine.run_until_idle().await.unwrap(),
        0,
        "not runnable while backing off"
    );

    // Let the backoff pass twice more.
    for _ in 0..2 {
        sqlx::query("UPDATE jobs SET run_at = now() WHERE job_key = 'evt_flaky'")
            .execute(&app.pool)
            .await
            .unwrap();
        app.engine.run_until_idle().await.unwrap();
    }
    let dead = state_of(&app, "evt_flaky").await;
    assert_eq!(
        (dead["state"].as_str(), dead["attempts"].as_i64()),
        (Some("dead"), Some(3))
    );
    assert!(
        dead["last_error"]
            .as_str()
            .unwrap()
            .contains("flaky on purpose")
    );
}

#[tokio::test]
async fn a_worker_that_dies_holding_a_lease_leaves_the_job_to_be_run_once() {
    let app = spawn(|s| s.engine.lease_secs = 1).await;
    let mut conn = app.pool.acquire().await.unwrap();
    queue::enqueue(
        &mut conn,
        "test.count",
        "job_1",
        None,
        &serde_json::json!({}),
    )
    .await
    .unwrap();
    drop(conn);

    // A worker claims and leases the job, then dies before completing it.
    let mut tx = app.pool.begin().await.unwrap();
    let claimed = queue::claim(&mut tx, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let lease = queue::lease(&mut tx, &[claimed[0].id], Duration::from_secs(1))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let dead_workers_job = LeasedJob {
        id: claimed[0].id,
        kind: claimed[0].kind.clone(),
        job_key: claimed[0].job_key.clone(),
        args: serde_json::json!({}),
        attempts: 1,
        lease,
    };

    assert_eq!(
        app.engine.run_until_idle().await.unwrap(),
        0,
        "the lease is live"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await; // the lease's own length
    assert_eq!(app.engine.run_until_idle().await.unwrap(), 1);

    // The dead worker coming back cannot complete it a second time.
    let mut tx = app.pool.begin().await.unwrap();
    assert!(!queue::complete(&mut tx, &dead_workers_job).await.unwrap());
    drop(tx);
    assert_eq!(app.count("SELECT count(*) FROM effects").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM jobs").await, 0);
}

#[tokio::test]
async fn a_worker_killed_inside_its_transaction_loses_nothing() {
    let app = spawn(|_| {}).await;
    app.post_event(&event("evt_crash", TYPE, "cus_c")).await;
    // A worker claims the event and its process dies: the connection goes away mid-transaction.
    let mut conn = PgConnection::connect(&app.database_url).await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    assert_eq!(queue::claim(&mut tx, 10).await.unwrap().len(), 1);
    assert_eq!(
        app.engine.run_until_idle().await.unwrap(),
        0,
        "the row lock is the lease"
    );
    std::mem::forget(tx); // no ROLLBACK is sent: the process is gone
    conn.close_hard().await.unwrap();

    // The server notices the dropped connection a moment later and releases the row lock.
    let mut ran = 0;
    for _ in 0..250 {
        ran = app.engine.run_until_idle().await.unwrap();
        if ran > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(ran, 1);
    assert_eq!(app.count("SELECT count(*) FROM effects").await, 1);
    assert_eq!(state_of(&app, "evt_crash").await["state"], "applied");
}

#[tokio::test]
async fn two_engines_on_one_database_apply_1000_events_exactly_once() {
    let app = spawn(|s| s.ingest.batch_max = 128).await;
    let app = &app;
    for chunk in 0..10 {
        let posts = (0..100).map(|i| {
            let n = chunk * 100 + i;
            let body = event_at(
                &format!("evt_{n:04}"),
                TYPE,
                &format!("cus_{}", n % 37),
                1_795_000_000 + n,
            );
            async move { app.post_event(&body).await.0 }
        });
        for status in futures::future::join_all(posts).await {
            assert_eq!(status, StatusCode::OK);
        }
    }
    let settings = test_settings(&app.database_url);
    let engines: Vec<Engine> = (0..2)
        .map(|_| {
            let pool = db::pool(&settings).unwrap();
            Engine::new(
                pool,
                registry(),
                settings.engine.clone(),
                Arc::new(Wakeup::default()),
            )
        })
        .collect();

    let ran = AtomicUsize::new(0);
    futures::future::join_all(engines.iter().map(|engine| async {
        while app.count("SELECT count(*) FROM jobs").await > 0 {
            ran.fetch_add(engine.run_until_idle().await.unwrap(), Ordering::Relaxed);
        }
    }))
    .await;

    assert_eq!(ran.load(Ordering::Relaxed), 1000);
    assert_eq!(app.count("SELECT count(*) FROM effects").await, 1000);
    assert_eq!(
        app.count("SELECT count(DISTINCT event_id) FROM effects")
            .await,
        1000
    );
    assert_eq!(
        app.count("SELECT count(*) FROM events WHERE state = 'applied'")
            .await,
        1000
    );
}

#[tokio::test]
async fn eight_workers_keep_each_customers_order_and_exclusion() {
    // Events arrive shuffled; one instance stores them, another with 8 worker loops applies.
    let app = spawn(|_| {}).await;
    let mut bodies: Vec<Vec<u8>> = (0..200)
        .map(|n| {
            event_at(
                &format!("evt_slow_o{n:03}"),
                TYPE,
                &format!("cus_{}", n % 4),
                1_795_000_000 + n,
            )
        })
        .collect();
    bodies.reverse();
    bodies.rotate_left(37);
    for body in &bodies {
        assert_eq!(app.post_event(body).await.0, StatusCode::OK);
    }

    let mut settings = test_settings(&app.database_url);
    settings.engine.workers = 8;
    // One job per claim: a worker claiming a batch applies its customers one after another.
    settings.engine.batch_size = 1;
    let pool = db::pool(&settings).unwrap();
    let workers =
        TestApp::start_with(settings, pool, app.database_url.clone(), Some(registry())).await;
    wait_until(|| async { app.count("SELECT count(*) FROM effects").await == 200 }).await;
    workers.shutdown.cancel();

    let violations = app
        .count(
            "SELECT count(*) FROM (
                 SELECT created < lag(created) OVER (PARTITION BY customer_id ORDER BY seq) AS backwards
                 FROM effects) t WHERE backwards",
        )
        .await;
    assert_eq!(
        violations, 0,
        "each customer's events applied in created order"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM effects WHERE NOT exclusive")
            .await,
        0
    );
    // Different customers' applications ran at the same time (one worker would run them
    // one after another: no two intervals would overlap).
    let overlapping = app
        .count(
            "SELECT count(*) FROM effects a JOIN effects b
               ON a.customer_id < b.customer_id AND a.started < b.ended AND b.started < a.ended",
        )
        .await;
    assert!(
        overlapping > 0,
        "no two customers' applications overlapped in time"
    );
}

#[tokio::test]
async fn a_customers_queued_events_follow_each_other_without_wake_ups() {
    // Stored before the worker starts, so no wake-up announces them; the worker polls hourly.
    // Only one event of the customer is runnable at a time: each finished one must lead the
    // worker straight on to the next.
    let app = spawn(|_| {}).await;
    for n in 0..20 {
        let body = event_at(
            &format!("evt_chain{n:02}"),
            TYPE,
            "cus_chain",
            1_795_000_000 + n,
        );
        assert_eq!(app.post_event(&body).await.0, StatusCode::OK);
    }
    let mut settings = test_settings(&app.database_url);
    settings.engine.workers = 1;
    settings.engine.poll_interval_ms = 3_600_000;
    let pool = db::pool(&settings).unwrap();
    let worker =
        TestApp::start_with(settings, pool, app.database_url.clone(), Some(registry())).await;
    wait_until(|| async { app.count("SELECT count(*) FROM effects").await == 20 }).await;
    worker.shutdown.cancel();
}

#[tokio::test]
async fn workers_still_wake_after_their_listen_connection_is_killed() {
    // Instance A stores; instance B applies, woken only through LISTEN/NOTIFY (it polls hourly).
    let app = spawn(|_| {}).await;
    let mut settings = test_settings(&app.database_url);
    settings.engine.workers = 2;
    settings.engine.poll_interval_ms = 3_600_000;
    settings.engine.notify_interval_ms = 10;
    let pool = db::pool(&settings).unwrap();
    let b = TestApp::start_with(settings, pool, app.database_url.clone(), Some(registry())).await;
    let applied = |id: &'static str| {
        let pool = app.pool.clone();
        move || {
            let pool = pool.clone();
            async move {
                let state: Option<String> =
                    sqlx::query_scalar("SELECT state FROM events WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&pool)
                        .await
                        .unwrap();
                state.as_deref() == Some("applied")
            }
        }
    };
    // A's own notifier must reach B: A has no workers, so only B can apply.
    let a = TestApp::start_with(
        {
            let mut s = test_settings(&app.database_url);
            s.engine.notify_interval_ms = 10;
            s
        },
        db::pool(&test_settings(&app.database_url)).unwrap(),
        app.database_url.clone(),
        Some(registry()),
    )
    .await;
    wait_until(|| async { listeners(&app.pool).await >= 2 }).await;
    a.post_event(&event("evt_l1", TYPE, "cus_l")).await;
    wait_until(applied("evt_l1")).await;

    let killed: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE query ILIKE 'LISTEN%' AND datname = current_database()",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(killed >= 1);

    a.post_event(&event_at("evt_l2", TYPE, "cus_l", 1_795_000_001))
        .await;
    wait_until(applied("evt_l2")).await;
    b.shutdown.cancel();
}

#[tokio::test]
async fn enqueuing_a_job_wakes_the_workers_by_itself() {
    // A worker that polls hourly, once it listens: a job enqueued in some transaction (no
    // call to any wake-up) runs as soon as that transaction commits.
    let app = spawn(|_| {}).await;
    let mut settings = test_settings(&app.database_url);
    settings.engine.workers = 1;
    settings.engine.poll_interval_ms = 3_600_000;
    let pool = db::pool(&settings).unwrap();
    let worker =
        TestApp::start_with(settings, pool, app.database_url.clone(), Some(registry())).await;
    wait_until(|| async { listeners(&app.pool).await >= 1 }).await;
    // Let the worker's first look find nothing and go to sleep.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut tx = app.pool.begin().await.unwrap();
    assert!(outbox::enqueue(&mut tx, &CountingJob {}).await.unwrap());
    assert!(
        !outbox::enqueue(&mut tx, &CountingJob {}).await.unwrap(),
        "once per key"
    );
    tx.commit().await.unwrap();
    wait_until(|| async { app.count("SELECT count(*) FROM effects").await == 1 }).await;
    assert_eq!(app.count("SELECT count(*) FROM jobs").await, 0, "completed");
    worker.shutdown.cancel();
}

async fn listeners(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'LISTEN%' AND datname = current_database()",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Waits for a condition that other tasks make true, for at most 20 s.
async fn wait_until<F, Fut>(condition: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn pruning_keeps_recent_and_unfinished_events() {
    let app = spawn(|_| {}).await;
    for id in ["evt_old_applied", "evt_old_dead", "evt_new_applied"] {
        app.post_event(&event(id, TYPE, "cus_r")).await;
    }
    sqlx::query("INSERT INTO cures VALUES ('none')")
        .execute(&app.pool)
        .await
        .unwrap();
    app.engine.run_until_idle().await.unwrap();
    sqlx::query(
        "UPDATE events SET received_at = now() - interval '31 days' WHERE id LIKE 'evt_old%'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query("UPDATE events SET state = 'dead' WHERE id = 'evt_old_dead'")
        .execute(&app.pool)
        .await
        .unwrap();

    assert_eq!(queue::prune(&app.pool, 30).await.unwrap(), 1);
    let left: Vec<String> = sqlx::query_scalar("SELECT id FROM events ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, ["evt_new_applied", "evt_old_dead"]);
}

/// How many times each event's handler was called (outside any transaction: a rolled-back
/// attempt counts too).
static CALLS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn calls_of(id: &str) -> usize {
    CALLS.lock().unwrap().iter().filter(|c| *c == id).count()
}

#[tokio::test]
async fn an_unreadable_event_leaves_its_batch_applied_in_one_pass() {
    // A payload that does not parse fails before its handler wrote anything: the batch is
    // not rolled back and run again with savepoints; its neighbours are applied once, in
    // the first pass (a poisoned event of another kind, by contrast, reruns the batch).
    let app = spawn(|_| {}).await;
    let ids = ["evt_ur_0", "evt_ur_unreadable", "evt_ur_2"];
    for (n, id) in ids.iter().enumerate() {
        app.post_event(&event(id, TYPE, &format!("cus_ur_{n}")))
            .await;
    }
    app.engine.run_until_idle().await.unwrap();

    let dead = state_of(&app, "evt_ur_unreadable").await;
    assert_eq!(dead["state"], "dead", "{dead}");
    assert!(
        dead["last_error"]
            .as_str()
            .unwrap()
            .contains("payload does not parse"),
        "{dead}"
    );
    for id in ["evt_ur_0", "evt_ur_2"] {
        assert_eq!(state_of(&app, id).await["state"], "applied", "{id}");
        assert_eq!(calls_of(id), 1, "{id} was applied in one pass");
    }

    let ids = ["evt_rb_0", "evt_rb_poison", "evt_rb_2"];
    for (n, id) in ids.iter().enumerate() {
        app.post_event(&event(id, TYPE, &format!("cus_rb_{n}")))
            .await;
    }
    app.engine.run_until_idle().await.unwrap();
    assert_eq!(state_of(&app, "evt_rb_poison").await["state"], "dead");
    let runs: Vec<usize> = ["evt_rb_0", "evt_rb_2"]
        .iter()
        .map(|id| calls_of(id))
        .collect();
    assert!(
        runs.contains(&2),
        "a rejected event rolls its batch back, so a neighbour runs twice: {runs:?}"
    );
}

#[tokio::test]
async fn a_customers_queued_events_are_applied_in_one_batch_in_order() {
    let app = spawn(|_| {}).await;
    for n in 0..5 {
        let id = format!("evt_burst_{n}");
        app.post_event(&event_at(&id, TYPE, "cus_burst", 1_795_000_000 + n))
            .await;
    }
    // One step: the key's head and the four queued behind it, not one batch per event.
    assert_eq!(app.engine.step().await.unwrap(), 5);
    let order: Vec<String> = sqlx::query_scalar("SELECT event_id FROM effects ORDER BY seq")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let expected: Vec<String> = (0..5).map(|n| format!("evt_burst_{n}")).collect();
    assert_eq!(order, expected);
}

#[tokio::test]
async fn a_retrying_event_holds_the_events_queued_behind_it_in_its_batch() {
    let app = spawn(|_| {}).await;
    app.post_event(&event_at("evt_hold_0", TYPE, "cus_hold", 1_795_000_000))
        .await;
    app.post_event(&event_at(
        "evt_hold_1_flaky",
        TYPE,
        "cus_hold",
        1_795_000_001,
    ))
    .await;
    app.post_event(&event_at("evt_hold_2", TYPE, "cus_hold", 1_795_000_002))
        .await;
    app.engine.run_until_idle().await.unwrap();
    assert_eq!(state_of(&app, "evt_hold_0").await["state"], "applied");
    assert_eq!(state_of(&app, "evt_hold_1_flaky").await["state"], "failed");
    let behind = state_of(&app, "evt_hold_2").await;
    assert_eq!(behind["state"], "received", "{behind}");
    assert_eq!(
        app.count("SELECT count(*) FROM effects WHERE event_id = 'evt_hold_2'")
            .await,
        0,
        "an event behind a retry is not applied before it"
    );
}

#[tokio::test]
async fn an_event_stored_late_and_earlier_waits_for_its_key_and_never_jumps_it() {
    // evt_k3 is being applied by claim A when evt_k1 (earlier `created`) and evt_k4 arrive.
    // evt_k1 is the earliest pending job of its key, but its key is in flight: no other claim
    // takes it until A ends (two transactions writing one customer's rows deadlocked, found
    // after 1 s). And a run of followers neither waits for a row another claim holds nor takes
    // one across it.
    let app = spawn(|_| {}).await;
    app.post_event(&event_at("evt_k3", TYPE, "cus_k", 1_795_000_003))
        .await;
    let mut a = app.pool.begin().await.unwrap();
    let held = outbox::queue::claim(&mut a, 32).await.unwrap();
    assert_eq!(job_keys(&held), ["evt_k3"]);
    app.post_event(&event_at("evt_k1", TYPE, "cus_k", 1_795_000_001))
        .await;
    app.post_event(&event_at("evt_k4", TYPE, "cus_k", 1_795_000_004))
        .await;
    app.post_event(&event_at("evt_x1", TYPE, "cus_x", 1_795_000_002))
        .await;

    let mut b = app.pool.begin().await.unwrap();
    sqlx::query("SET LOCAL lock_timeout = '500ms'")
        .execute(&mut *b)
        .await
        .unwrap();
    let heads = outbox::queue::claim(&mut b, 32).await.unwrap();
    assert_eq!(job_keys(&heads), ["evt_x1"], "cus_k is A's until A ends");
    let k1: i64 = sqlx::query_scalar("SELECT id FROM jobs WHERE job_key = 'evt_k1'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let followers = outbox::queue::claim_followers(&mut b, &[k1], 31)
        .await
        .expect("a follower held by another claim is skipped, not waited for");
    assert_eq!(job_keys(&followers), Vec::<&str>::new());
    b.rollback().await.unwrap();

    // Once A lets go, evt_k1 is claimed, and the run behind it is whole again, in order.
    a.rollback().await.unwrap();
    let mut c = app.pool.begin().await.unwrap();
    let heads = outbox::queue::claim(&mut c, 32).await.unwrap();
    assert_eq!(job_keys(&heads), ["evt_k1", "evt_x1"]);
    let followers = outbox::queue::claim_followers(&mut c, &[heads[0].id], 30)
        .await
        .unwrap();
    assert_eq!(job_keys(&followers), ["evt_k3", "evt_k4"]);
}

#[tokio::test]
async fn a_run_of_followers_ends_at_its_first_gap_and_each_key_is_its_own() {
    // cus_a: a head and three queued behind it, the second of which another transaction holds
    // (an operator's retry, say); cus_b: a head and two behind it, none held.
    let app = spawn(|_| {}).await;
    for (id, customer, created) in [
        ("evt_a0", "cus_a", 1_795_000_000),
        ("evt_a1", "cus_a", 1_795_000_001),
        ("evt_a2", "cus_a", 1_795_000_002),
        ("evt_a3", "cus_a", 1_795_000_003),
        ("evt_b0", "cus_b", 1_795_000_000),
        ("evt_b1", "cus_b", 1_795_000_001),
        ("evt_b2", "cus_b", 1_795_000_002),
    ] {
        app.post_event(&event_at(id, TYPE, customer, created)).await;
    }
    let mut other = app.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM jobs WHERE job_key = 'evt_a2' FOR UPDATE")
        .execute(&mut *other)
        .await
        .unwrap();

    let mut tx = app.pool.begin().await.unwrap();
    let heads = outbox::queue::claim(&mut tx, 2).await.unwrap();
    assert_eq!(job_keys(&heads), ["evt_a0", "evt_b0"]);
    let ids: Vec<i64> = heads.iter().map(|j| j.id).collect();
    let followers = outbox::queue::claim_followers(&mut tx, &ids, 30)
        .await
        .unwrap();
    assert_eq!(
        job_keys(&followers),
        ["evt_a1", "evt_b1", "evt_b2"],
        "cus_a's run stops before the row held elsewhere (and does not go on after it)"
    );
    tx.rollback().await.unwrap();
    other.rollback().await.unwrap();

    // The whole claim in one call: heads first, then the runs behind them, with their events.
    let mut tx = app.pool.begin().await.unwrap();
    let batch = outbox::queue::claim_batch(&mut tx, 5, &[TYPE])
        .await
        .unwrap();
    let keys: Vec<&str> = batch.iter().map(|(j, _)| j.job_key.as_str()).collect();
    assert_eq!(keys, ["evt_a0", "evt_b0", "evt_a1", "evt_b1", "evt_a2"]);
    for (job, event) in &batch {
        let event = event.as_ref().expect("each event job comes with its event");
        assert_eq!(event.id, job.job_key);
        assert!(
            !event.payload.is_empty(),
            "a handled type carries its payload"
        );
    }
}

#[tokio::test]
async fn the_claims_kept_plans_made_on_an_empty_queue_read_a_full_one_by_index() {
    // The claim's functions keep one generic plan a session, made at their first call: here
    // while the queue is empty (its statistics say so). With 400 jobs queued they still read
    // the queue and the log by index: no sequential scan in the claim's transaction (a kept
    // plan that scanned the queue per candidate once made each claim of a 20k backlog 7 s).
    let app = spawn(|_| {}).await;
    let mut conn = PgConnection::connect(&app.database_url).await.unwrap();
    for _ in 0..3 {
        let mut tx = conn.begin().await.unwrap();
        assert!(
            queue::claim_batch(&mut tx, 16, &[TYPE])
                .await
                .unwrap()
                .is_empty()
        );
        let none: Vec<queue::Finished<'_>> = Vec::new();
        queue::finish_events(&mut tx, &none).await.unwrap();
        tx.rollback().await.unwrap();
    }
    for n in 0..400 {
        let id = format!("evt_full_{n}");
        let customer = format!("cus_full_{}", n % 100);
        app.post_event(&event_at(&id, TYPE, &customer, 1_795_000_000 + n / 100))
            .await;
    }

    let mut tx = conn.begin().await.unwrap();
    let batch = queue::claim_batch(&mut tx, 64, &[TYPE]).await.unwrap();
    assert_eq!(batch.len(), 64);
    let finished: Vec<queue::Finished<'_>> = batch
        .iter()
        .map(|(job, _)| queue::Finished {
            job,
            outcome: Outcome::Applied,
        })
        .collect();
    assert!(
        queue::finish_events(&mut tx, &finished).await.unwrap(),
        "the 100 customers have more events queued"
    );
    let scans: Vec<(String, i64)> = sqlx::query_as(
        "SELECT relname::text, seq_scan FROM pg_stat_xact_user_tables
         WHERE relname IN ('jobs', 'events') ORDER BY relname",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    assert_eq!(
        scans,
        [("events".to_owned(), 0), ("jobs".to_owned(), 0)],
        "claiming and finishing read the queue and the log by index only"
    );
}

fn job_keys(jobs: &[outbox::queue::ClaimedJob]) -> Vec<&str> {
    jobs.iter().map(|j| j.job_key.as_str()).collect()
}
