//! Ops commands that need only the database: `status` and `events ...`.
//! Human-readable tables by default, `--json` for scripts.

use chrono::{DateTime, Utc};
use clap::Subcommand;
use sqlx::PgPool;

use outbox::queue;

use crate::store::duplicates;
use crate::stripe::event::Scope;
use outbox::log::{self as events, EventRecord, ListFilter};

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// The newest stored events.
    List {
        #[arg(long, value_parser = ["received", "processing", "applied", "skipped", "failed", "dead"])]
        state: Option<String>,
        #[arg(long = "type")]
        event_type: Option<String>,
        /// 1 to 1000.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=1000))]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// One event: envelope, state, attempts, last error; the raw payload with --payload.
    Show {
        id: String,
        #[arg(long)]
        payload: bool,
        #[arg(long)]
        json: bool,
    },
    /// Put a dead (or backing-off) event back to pending now; --dead for every dead letter.
    Retry {
        #[arg(required_unless_present = "dead", conflicts_with = "dead")]
        id: Option<String>,
        #[arg(long)]
        dead: bool,
    },
    /// Re-apply stored events received since TIME through the same handlers.
    Replay {
        /// RFC 3339 time (2026-11-23T10:00:00Z) or an age such as 30m, 6h, 7d.
        #[arg(long, value_parser = parse_since)]
        since: DateTime<Utc>,
        #[arg(long = "type")]
        event_type: Option<String>,
    },
}

pub async fn status(pool: &PgPool, json: bool) -> anyhow::Result<()> {
    let status = events::status(pool).await?;
    let billed_twice = duplicates::count(pool).await?;
    if json {
        let mut value = serde_json::to_value(&status)?;
        value["duplicate_subscriptions"] = billed_twice.into();
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    let mut rows: Vec<Vec<String>> = status
        .events
        .iter()
        .map(|(state, n)| vec![format!("events {state}"), n.to_string()])
        .collect();
    let queue = &status.queue;
    rows.push(vec!["queue pending".into(), queue.pending.to_string()]);
    rows.push(vec!["queue in flight".into(), queue.in_flight.to_string()]);
    rows.push(vec!["dead letters".into(), queue.dead.to_string()]);
    let oldest = queue
        .oldest_pending_secs
        .map_or("-".to_owned(), |s| format!("{s:.1}s"));
    rows.push(vec!["oldest pending".into(), oldest]);
    rows.push(vec!["plans billed twice".into(), billed_twice.to_string()]);
    print_table(&["", "count"], &rows);
    Ok(())
}

pub async fn events(pool: &PgPool, command: EventsCommand, scope: &Scope) -> anyhow::Result<()> {
    match command {
        EventsCommand::List {
            state,
            event_type,
            limit,
            json,
        } => {
            let filter = ListFilter {
                state,
                event_type,
                limit,
            };
            let list = events::list(pool, &filter).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                let rows: Vec<Vec<String>> = list.iter().map(row).collect();
                print_table(
                    &[
                        "id",
                        "type",
                        "created",
                        "received_at",
                        "state",
                        "attempts",
                        "last_error",
                    ],
                    &rows,
                );
            }
        }
        EventsCommand::Show { id, payload, json } => {
            let event = events::get(pool, &id)
                .await?
                .ok_or_else(|| super::UsageError(format!("no event {id}")))?;
            let raw = if payload {
                events::payload(pool, &id).await?
            } else {
                None
            };
            let raw = raw.map(|p| String::from_utf8_lossy(&p).into_owned());
            if json {
                let mut value = serde_json::to_value(&event)?;
                if let Some(raw) = &raw {
                    value["payload"] = serde_json::from_str(raw).unwrap_or(raw.clone().into());
                }
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                let value = serde_json::to_value(&event)?;
                for (key, v) in value.as_object().into_iter().flatten() {
                    println!(
                        "{key:>12}  {}",
                        v.as_str().map_or(v.to_string(), str::to_owned)
                    );
                }
                if let Some(raw) = raw {
                    println!("{raw}");
                }
            }
        }
        EventsCommand::Retry { id, dead: _ } => {
            let n = queue::retry(pool, id.as_deref()).await?;
            wake_daemons(pool).await;
            println!("{n} queued for retry");
        }
        EventsCommand::Replay { since, event_type } => {
            let n = crate::ingest::replay(pool, since, event_type.as_deref(), scope).await?;
            wake_daemons(pool).await;
            println!("{n} events queued for replay (received since {since})");
        }
    }
    Ok(())
}

async fn wake_daemons(pool: &PgPool) {
    if let Err(error) = queue::notify_peers(pool, "cli").await {
        eprintln!("note: could not notify running daemons ({error}); they will poll");
    }
}

fn row(e: &EventRecord) -> Vec<String> {
    vec![
        e.id.clone(),
        e.event_type.clone(),
        e.created.to_string(),
        e.received_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        e.state.clone(),
        e.attempts.to_string(),
        e.last_error.clone().unwrap_or_default(),
    ]
}

pub(super) fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// RFC 3339, or an age: `90s`, `30m`, `6h`, `7d`.
pub(super) fn parse_since(value: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    // The unit is the last character, whatever its width (`5日` must not split a char).
    let unit_at = value.char_indices().last().map_or(0, |(i, _)| i);
    let (number, unit) = value.split_at(unit_at);
    let n: i64 = number
        .parse()
        .map_err(|_| format!("`{value}` is neither RFC 3339 nor an age like 30m"))?;
    let unit_secs: i64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit in `{value}`: use s, m, h or d")),
    };
    n.checked_mul(unit_secs)
        .filter(|secs| *secs >= 0)
        .and_then(chrono::Duration::try_seconds)
        .and_then(|age| Utc::now().checked_sub_signed(age))
        .ok_or_else(|| format!("`{value}` is not an age this clock can go back"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_times_and_ages() {
        let t = parse_since("2026-11-23T10:00:00Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-23T10:00:00+00:00");
        let age = Utc::now() - parse_since("6h").unwrap();
        assert!((age.num_seconds() - 21_600).abs() < 5);
        assert!(parse_since("6x").is_err());
        assert!(parse_since("yesterday").is_err());
        // Ages past what the clock can represent are refused, not a panic.
        for huge in ["100000000d", "9223372036854775807s", "-5d"] {
            assert!(parse_since(huge).is_err(), "{huge}");
        }
        // A unit of more than one byte is an unknown unit, not a panic.
        for odd in ["1ü", "5日", "ü", ""] {
            assert!(parse_since(odd).is_err(), "{odd}");
        }
    }
}
