//! The run's results: the apply lag read from the daemon's event log, and the summary printed.

use std::time::{Duration, Instant};

use anyhow::Context;

use crate::stats::Summary;

pub(super) fn print_human(r: &serde_json::Value) {
    let ms = |v: &serde_json::Value| {
        if v.is_null() {
            "-".to_owned()
        } else {
            format!(
                "p50 {} p90 {} p99 {} max {} ms",
                v["p50"], v["p90"], v["p99"], v["max"]
            )
        }
    };
    println!(
        "{}: offered {}/s over {} connections; sent {}, accepted {} ({} /s), rejected {}, errors {}",
        r["label"].as_str().unwrap_or(""),
        if r["offered_rate"] == 0 {
            "max".to_owned()
        } else {
            r["offered_rate"].to_string()
        },
        r["connections"],
        r["sent"],
        r["accepted"],
        r["accepted_per_s"],
        r["rejected"],
        r["errors"]
    );
    println!("  ack:       {}", ms(&r["ack_ms"]));
    if !r["apply_lag_ms"].is_null() {
        println!(
            "  apply lag: {} (applied {}, skipped {})",
            ms(&r["apply_lag_ms"]),
            r["applied"],
            r["skipped"]
        );
        if r["apply_lag_all_ms"] != r["apply_lag_ms"] {
            println!(
                "    with the warm-up's events: {}",
                ms(&r["apply_lag_all_ms"])
            );
        }
    }
    println!("  statuses:  {}", r["statuses"]);
}

pub(super) struct Lag {
    /// The events sent in the measured window (the warm-up's left out, as for the acks).
    pub(super) summary: Option<Summary>,
    /// Every event of the run.
    pub(super) all: Option<Summary>,
    pub(super) applied: i64,
    pub(super) skipped: i64,
}

/// Waits until every stored event of the run is finished, then reads received → applied lag:
/// of the events from number `first_measured` on (those sent after the warm-up), and of all.
pub(super) async fn apply_lag(
    db: &str,
    run: &str,
    accepted: u64,
    first_measured: u64,
    timeout_secs: u64,
) -> anyhow::Result<Lag> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(db)
        .await
        .context("--database-url")?;
    let pattern = format!("evt_bench_{run}_%");
    let deadline = Instant::now() + Duration::from_secs(timeout_secs);
    loop {
        let (stored, finished): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE state IN ('applied', 'skipped'))
             FROM events WHERE id LIKE $1",
        )
        .bind(&pattern)
        .fetch_one(&pool)
        .await?;
        if stored as u64 >= accepted && finished == stored {
            break;
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "after {timeout_secs}s only {finished} of {stored} stored events are finished"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // An event's id ends in its number (`evt_bench_<run>_<n>`).
    let rows: Vec<(String, i64, f64)> = sqlx::query_as(
        "SELECT state, substring(id FROM '_([0-9]+)$')::bigint,
                (extract(epoch FROM finished_at - received_at) * 1e6)::float8
         FROM events WHERE id LIKE $1",
    )
    .bind(&pattern)
    .fetch_all(&pool)
    .await?;
    let applied = rows.iter().filter(|(s, _, _)| s == "applied").count() as i64;
    let skipped = rows.len() as i64 - applied;
    let micros = |measured_only: bool| {
        rows.iter()
            .filter(|(_, n, _)| !measured_only || *n as u64 >= first_measured)
            .map(|(_, _, us)| us.max(0.0) as u32)
            .collect()
    };
    Ok(Lag {
        summary: Summary::of_micros(micros(true)),
        all: Summary::of_micros(micros(false)),
        applied,
        skipped,
    })
}
