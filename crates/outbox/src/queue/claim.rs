//! Claiming: the heads of ordering keys, the runs queued behind them, and their events.

use std::collections::HashMap;

use sqlx::PgConnection;

use super::ClaimedJob;
use crate::{EVENT_JOB, StoredEvent};

/// Claims up to `limit` runnable jobs, oldest first, locking them in `conn`'s transaction.
///
/// The claim is the SQL function `claim_jobs` (migration 23): it walks the queue's index in
/// order and probes each candidate's ordering key once, under planner settings that its own
/// `SET` clauses scope to it, so the handlers that run next in the same transaction are
/// planned as the server is configured. The function plans its body on every call: a cached
/// generic plan made while `jobs` was nearly empty (at start) scanned the whole queue per
/// candidate, and a backlog of 20k jobs made each claim take 7 s.
pub async fn claim(conn: &mut PgConnection, limit: i64) -> Result<Vec<ClaimedJob>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, kind, job_key, ordering_key, args, attempts, enqueued_at FROM claim_jobs($1)",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// How many of one ordering key's queued events a batch takes after its head.
pub const FOLLOWERS_PER_KEY: i64 = 16;

/// The events queued right behind claimed event heads (`heads`, their ids), up to `limit`
/// and [`FOLLOWERS_PER_KEY`] a key, in key order, locked in `conn`'s transaction: a
/// customer's burst of events is applied in one batch, in order, instead of one batch per
/// event. Only an unbroken run of due event jobs right after its head follows it; an outbound
/// job or one waiting for its retry ends its key's run.
///
/// Only this transaction claims heads of these keys (the claim's per-key lock), so no other
/// claimer holds their followers; still, a follower is locked with `SKIP LOCKED` and a key's
/// run ends before the first row another transaction holds (an operator's retry, say), so a
/// claim never waits for a lock. Before the per-key lock, an event stored late with an
/// earlier `created` than a job being applied was a head of its own, two claimers held jobs
/// of one key, and the one waiting here for the other's rows deadlocked with it (Postgres
/// finds that after `deadlock_timeout`, 1 s: the steady benchmark's 1 s apply lags).
pub async fn claim_followers(
    conn: &mut PgConnection,
    heads: &[i64],
    limit: i64,
) -> Result<Vec<ClaimedJob>, sqlx::Error> {
    if heads.is_empty() || limit <= 0 {
        return Ok(Vec::new());
    }
    let rows: Vec<Follower> = sqlx::query_as(
        "WITH head AS (
             SELECT h.ordering_key, h.sort_key, h.id FROM jobs h
             WHERE h.id = ANY($1) AND h.ordering_key IS NOT NULL
         ), queued AS (
             SELECT j.id, j.sort_key,
                    bool_and(j.kind = $3 AND j.run_at <= now() AND j.locked_until IS NULL)
                        OVER w AS unbroken,
                    row_number() OVER w AS n
             FROM jobs j JOIN head h ON h.ordering_key = j.ordering_key
             WHERE j.state = 'pending' AND (j.sort_key, j.id) > (h.sort_key, h.id)
             WINDOW w AS (PARTITION BY j.ordering_key ORDER BY j.sort_key, j.id)
         ), picked AS (
             SELECT id, n FROM queued WHERE unbroken AND n <= $4
             ORDER BY sort_key, id LIMIT $2
         )
         SELECT j.id, j.kind, j.job_key, j.ordering_key, j.args, j.attempts, j.enqueued_at,
                p.n AS place
         FROM jobs j JOIN picked p ON p.id = j.id
         ORDER BY j.sort_key, j.id
         FOR UPDATE OF j SKIP LOCKED",
    )
    // Planned afresh, as the other statements over the queue (see `claim`).
    .persistent(false)
    .bind(heads)
    .bind(limit)
    .bind(EVENT_JOB)
    .bind(FOLLOWERS_PER_KEY)
    .fetch_all(conn)
    .await?;
    Ok(unbroken_runs(rows))
}

/// A follower with its place in its key's run (1: right after the head).
#[derive(sqlx::FromRow)]
struct Follower {
    #[sqlx(flatten)]
    job: ClaimedJob,
    place: i64,
}

/// The followers whose key's run has no gap before them (a row held by another transaction
/// was skipped): the rest stay queued, in order, behind the gap.
fn unbroken_runs(rows: Vec<Follower>) -> Vec<ClaimedJob> {
    let mut next: HashMap<String, i64> = HashMap::new();
    rows.into_iter()
        .filter_map(|f| {
            let key = f.job.ordering_key.clone()?;
            let expected = next.entry(key).or_insert(1);
            (f.place == *expected).then(|| {
                *expected += 1;
                f.job
            })
        })
        .collect()
}

/// The events behind claimed event jobs, in one query; pruned ones are missing. Only events
/// of a `handled` type carry their payload (others are skipped unread; theirs is empty).
/// Planned afresh for the same reason as [`claim`]: a generic plan from when the log was
/// small would scan the whole log.
pub async fn load_events(
    conn: &mut PgConnection,
    event_ids: &[&str],
    handled: &[&str],
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, type, created, customer_id, object_id,
                CASE WHEN type = ANY($2) THEN payload ELSE ''::bytea END AS payload
         FROM events WHERE id = ANY($1)",
    )
    .persistent(false)
    .bind(event_ids)
    .bind(handled)
    .fetch_all(conn)
    .await
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn follower(key: &str, id: i64, place: i64) -> Follower {
        Follower {
            job: ClaimedJob {
                id,
                kind: EVENT_JOB.to_owned(),
                job_key: format!("evt_{id}"),
                ordering_key: Some(key.to_owned()),
                args: None,
                attempts: 0,
                enqueued_at: Utc::now(),
            },
            place,
        }
    }

    #[test]
    fn a_run_ends_at_its_first_gap_and_each_key_is_its_own() {
        // cus_a: places 1, 2, then 4 (3 was held elsewhere); cus_b starts at 2 (1 held).
        let rows = vec![
            follower("cus_a", 1, 1),
            follower("cus_b", 2, 2),
            follower("cus_a", 3, 2),
            follower("cus_b", 4, 3),
            follower("cus_a", 5, 4),
        ];
        let ids: Vec<i64> = unbroken_runs(rows).iter().map(|j| j.id).collect();
        assert_eq!(ids, [1, 3]);
    }
}
