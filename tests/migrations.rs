//! Migrations added after the previous release must not block writes to a table that grows
//! while they build an index: on those tables an index is built `CONCURRENTLY`, which
//! Postgres allows only outside a transaction, so the migration starts with sqlx's
//! `-- no-transaction` directive.
//!
//! "The previous release" is the set of migrations applied in its database,
//! `fixtures/upgrade/v0.1.0.sql` (its `_sqlx_migrations` rows); migrations before it built
//! their indexes inside their transaction, as docs/RUNBOOK.md → Upgrade says.

use std::collections::BTreeSet;
use std::path::Path;

const PREVIOUS_DUMP: &str = "fixtures/upgrade/v0.1.0.sql";

/// Tables that grow with traffic: an index built on one in a transaction holds its writes
/// (every webhook, every applied event, every API call) until it is built.
const GROWING: &[&str] = &[
    "events",
    "jobs",
    "activity",
    "invoices",
    "invoice_usage_items",
    "usage_events",
    "balance_edits",
    "balances",
    "customers",
    "customer_plans",
    "customer_discounts",
    "stripe_subscriptions",
    "attaches",
    "plan_changes",
    "reward_grants",
    "entities",
    "trials",
    "audits",
];

/// What is wrong with a migration's SQL, or nothing.
fn blocking_indexes(sql: &str) -> Vec<String> {
    let no_transaction = sql
        .lines()
        .next()
        .is_some_and(|first| first.trim() == "-- no-transaction");
    // Statements without comments, whitespace collapsed, lower case.
    let text: String = sql
        .lines()
        .map(|line| line.split("--").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let mut problems = Vec::new();
    for statement in text.split(';') {
        let words: Vec<&str> = statement.split_whitespace().collect();
        let starts = match words.as_slice() {
            ["create", "index", ..] => 2,
            ["create", "unique", "index", ..] => 3,
            _ => continue,
        };
        let Some(on) = words.iter().position(|w| *w == "on") else {
            continue;
        };
        let table = words
            .get(on + 1)
            .copied()
            .map(|t| {
                if t == "only" {
                    words.get(on + 2).copied().unwrap_or_default()
                } else {
                    t
                }
            })
            .unwrap_or_default()
            .trim_start_matches("public.")
            .split('(')
            .next()
            .unwrap_or_default();
        if !GROWING.contains(&table) {
            continue;
        }
        let statement = words.join(" ");
        if words.get(starts) != Some(&"concurrently") {
            problems.push(format!("not CONCURRENTLY on {table}: {statement}"));
        } else if !no_transaction {
            problems.push(format!(
                "CONCURRENTLY needs `-- no-transaction` as the first line: {statement}"
            ));
        }
    }
    problems
}

/// The migration versions the previous release had applied (its dump's `_sqlx_migrations`).
fn previous_release() -> BTreeSet<i64> {
    let dump = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(PREVIOUS_DUMP))
        .unwrap_or_else(|e| panic!("{PREVIOUS_DUMP}: {e} (scripts/upgrade-fixture.sh v0.1.0)"));
    let versions: BTreeSet<i64> = dump
        .lines()
        .filter_map(|l| l.strip_prefix("INSERT INTO public._sqlx_migrations VALUES ("))
        .filter_map(|rest| rest.split(',').next()?.trim().parse().ok())
        .collect();
    assert!(
        !versions.is_empty(),
        "no _sqlx_migrations rows in {PREVIOUS_DUMP}"
    );
    versions
}

#[test]
fn migrations_after_the_previous_release_index_growing_tables_concurrently() {
    let previous = previous_release();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(version) = name.split('_').next().and_then(|v| v.parse::<i64>().ok()) else {
            continue;
        };
        if previous.contains(&version) {
            continue;
        }
        for problem in blocking_indexes(&std::fs::read_to_string(&path).unwrap()) {
            problems.push(format!("{name}: {problem}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_check_tells_a_blocking_index_from_a_concurrent_one() {
    assert_eq!(
        blocking_indexes("CREATE INDEX events_type_idx ON events (type, received_at);"),
        ["not CONCURRENTLY on events: create index events_type_idx on events (type, received_at)"]
    );
    assert_eq!(
        blocking_indexes("create unique index if not exists j on public.jobs(job_key);").len(),
        1
    );
    assert_eq!(
        blocking_indexes("CREATE INDEX CONCURRENTLY a_idx ON activity (at);"),
        ["CONCURRENTLY needs `-- no-transaction` as the first line: \
          create index concurrently a_idx on activity (at)"]
    );
    assert!(
        blocking_indexes(
            "-- no-transaction\n-- why\nCREATE INDEX CONCURRENTLY IF NOT EXISTS a_idx\n  ON activity (at);"
        )
        .is_empty()
    );
    // A small table, or a table created in the same migration, is not held for long.
    assert!(blocking_indexes("CREATE INDEX c_idx ON console_revocations (at);").is_empty());
    assert!(blocking_indexes("CREATE TABLE t (a int); CREATE INDEX t_idx ON t (a);").is_empty());
}
