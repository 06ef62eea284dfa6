//! Handlers are planned as the server is configured: the claim's planner switches (no
//! sequential scans, sorts, hash or merge joins, no JIT) hold inside `claim_jobs` only.
//! With them on the whole apply transaction, a handler statement that had to sort was costed
//! at 10^10 and JIT-compiled (~300 ms each, Postgres at its defaults).

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
