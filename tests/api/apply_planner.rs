//! Handlers are planned as the server is configured: the claim's planner switches (no
//! sequential scans, sorts, hash or merge joins, no JIT) hold inside `claim_jobs` only.
//! With them on the whole apply transaction, a handler statement that had to sort was costed
//! at 10^10 and JIT-compiled (~300 ms each, Postgres at its defaults). And a subscription
//! state applied alone plans its statements once per connection, whatever the store's
//! statistics say (migration 35).

use outbox::{EventHandler, JobError, Outcome, Registry, StoredEvent};
use sqlx::PgConnection;

use crate::helpers::*;

const TYPE: &str = "test.planner";
const SETTINGS: [&str; 5] = [
    "enable_seqscan",
    "enable_sort",
    "enable_hashjoin",
    "enable_mergejoin",
    "jit",
];

/// Records the planner settings its own statements run under, per event.
struct PlannerProbe;

impl EventHandler for PlannerProbe {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<Outcome, JobError> {
        for name in SETTINGS {
            sqlx::query(
                "INSERT INTO seen_settings (event_id, name, value)
                 VALUES ($1, $2, current_setting($2))",
            )
            .bind(&event.id)
            .bind(name)
            .execute(&mut *conn)
            .await?;
        }
        Ok(Outcome::Applied)
    }
}

#[tokio::test]
async fn handlers_run_under_the_servers_planner_settings_not_the_claims() {
    let app =
        TestApp::spawn_with_registry(|_| {}, Registry::default().on_event(TYPE, PlannerProbe))
            .await;
    sqlx::query("CREATE TABLE seen_settings (event_id text, name text, value text)")
        .execute(&app.pool)
        .await
        .unwrap();
    // What a connection outside any claim sees: the server's configuration.
    let mut expected = Vec::new();
    for name in SETTINGS {
        let value: String = sqlx::query_scalar("SELECT current_setting($1)")
            .bind(name)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        expected.push((name.to_owned(), value));
    }
    assert!(
        expected.iter().any(|(_, v)| v == "on"),
        "the server runs with the planner's defaults: {expected:?}"
    );
    // Several customers and a second event behind one of them: fast batches and the
    // claim that follows a finished head.
    for (id, customer) in [
        ("evt_p1", "cus_1"),
        ("evt_p2", "cus_2"),
        ("evt_p3", "cus_1"),
    ] {
        app.post_event(&event(id, TYPE, customer)).await;
    }
    assert_eq!(app.engine.run_until_idle().await.unwrap(), 3);

    for id in ["evt_p1", "evt_p2", "evt_p3"] {
        let seen: Vec<(String, String)> = sqlx::query_as(
            "SELECT name, value FROM seen_settings WHERE event_id = $1 ORDER BY name",
        )
        .bind(id)
        .fetch_all(&app.pool)
        .await
        .unwrap();
        let mut want = expected.clone();
        want.sort();
        assert_eq!(
            seen, want,
            "{id}'s handler saw the claim's planner switches"
        );
    }
}

/// A subscription's state applied one at a time (`sync_subscription_event`, ~20 statements
/// with the ones it calls) plans each of its statements once per connection, not on every
/// call: left to choose, PL/pgSQL re-planned several of them whenever a custom plan (a
/// parameter folded into a constant) looked cheaper than the generic one (migration 35).
#[tokio::test]
async fn a_subscription_state_applied_alone_keeps_its_statements_plans() {
    let app = TestApp::spawn().await;
    // A store with a history, its statistics known: each customer holds its default plan and
    // has had twenty subscriptions. With most rows ended, a custom plan's estimate for
    // "this customer's held plans" (the statuses known) is below the generic plan's.
    sqlx::raw_sql(
        "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
         WITH c AS (INSERT INTO customers (id, name, stripe_id)
                    SELECT 'u_gp_' || g, 'n', 'cus_gp_' || g FROM generate_series(1, 1000) g
                    RETURNING pk)
         INSERT INTO customer_plans (customer_pk, plan_id, plan_group, status,
                                     stripe_subscription_id, started_at, ended_at)
         SELECT pk, 'free', 'main', 'active', NULL, now() - interval '90 days', NULL FROM c
         UNION ALL
         SELECT pk, 'pro', 'main', 'expired', 'sub_gp_' || pk || '_' || k,
                now() - interval '80 days', now() - interval '70 days'
         FROM c, generate_series(1, 20) k;
         ANALYZE customers; ANALYZE customer_plans;",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    sqlx::raw_sql(
        "SET pg_stat_statements.track = 'all'; SET pg_stat_statements.track_planning = on;
         SELECT pg_stat_statements_reset();",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    // Six lives of a subscription, in order: created incomplete, active, past_due, active
    // set to cancel, deleted; each for another customer.
    let states = [
        ("incomplete", "incomplete", false),
        ("active", "active", false),
        ("past_due", "past_due", false),
        ("active", "active", true),
        ("canceled", "expired", true),
    ];
    let start = 1_800_000_000i64;
    for life in 0..6i64 {
        let customer = format!("cus_gp_{}", 10 + life);
        let sub = format!("sub_gp_life_{life}");
        for (n, (stripe_status, status, cancel)) in states.iter().enumerate() {
            let created = start + life * 100 + n as i64;
            let at = chrono::DateTime::from_timestamp(created, 0).unwrap();
            let ended = (*status == "expired").then_some(at);
            let verdict: String = sqlx::query_scalar(
                "SELECT verdict FROM sync_subscription_event(
                     $1, $2, $3, NULL, NULL, $4, 'pro', 'main', false, 'free', false, $5, $6,
                     $7, $7 + interval '30 days', $8, NULL, $9, $7, $9, 1, NULL, $2, $7,
                     $10, $1, false, false)",
            )
            .bind(format!("evt_gp_{life}_{n}"))
            .bind(created)
            .bind(&customer)
            .bind(&sub)
            .bind(stripe_status)
            .bind(status)
            .bind(at)
            .bind(cancel)
            .bind(ended)
            .bind(n as i32)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
            assert_eq!(verdict, "applied", "life {life}, state {n}");
        }
    }
    // The statements the thirty states ran at least a dozen times, and how often each was
    // planned: once per connection, plus the first few custom plans PL/pgSQL always makes.
    let planned: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 90), calls, plans
         FROM pg_stat_statements
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND calls >= 12 AND query NOT LIKE 'SELECT verdict FROM sync_subscription_event%'
         ORDER BY plans DESC",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    assert!(
        planned.len() >= 8,
        "the path's statements are counted: {planned:#?}"
    );
    let replanned: Vec<_> = planned.iter().filter(|(_, _, plans)| *plans > 6).collect();
    assert!(
        replanned.is_empty(),
        "planned afresh on most calls: {replanned:#?}"
    );
    // What the lives left: each customer back on the default plan, the subscription ended.
    let held: Vec<(String, String)> = sqlx::query_as(
        "SELECT p.plan_id, p.status FROM customer_plans p JOIN customers c ON c.pk = p.customer_pk
         WHERE c.stripe_id = 'cus_gp_10' AND p.status <> 'expired' ORDER BY p.plan_id",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    assert_eq!(held, [("free".to_owned(), "active".to_owned())]);
}
