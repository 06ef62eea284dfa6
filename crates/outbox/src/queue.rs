//! The queue's SQL: claim, finish, fail, lease, complete, enqueue, retry, replay.
//!
//! A job is runnable when it is pending, due, not under a live lease, and the head of its
//! ordering key (no earlier pending job shares the key). Claims take runnable rows with
//! `FOR UPDATE SKIP LOCKED`, so concurrent claimers never take the same row, and a job whose
//! predecessor is being worked on is not even a candidate: per-key order and exclusion hold
//! across processes.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use crate::{EVENT_JOB, LeasedJob, Outcome, StoredEvent, Verdict};

/// The channel every instance LISTENs on for "there is new work" (the trigger
/// `jobs_wake_workers` notifies it too).
pub const CHANNEL: &str = "stripe_reconciler_jobs";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedJob {
    pub id: i64,
    pub kind: String,
    pub job_key: String,
    pub ordering_key: Option<String>,
    pub args: Option<serde_json::Value>,
    pub attempts: i32,
    pub enqueued_at: DateTime<Utc>,
}

impl ClaimedJob {
    pub fn is_event(&self) -> bool {
        self.kind == EVENT_JOB
    }

    pub fn age(&self) -> Duration {
        (Utc::now() - self.enqueued_at).to_std().unwrap_or_default()
    }
}

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
/// A follower is locked with `SKIP LOCKED`, and a key's run ends before the first one that
/// another transaction holds: an event stored late with an earlier `created` than a job
/// being applied is a head of its own (nothing pending precedes it), so two claimers can hold
/// jobs of one key, and one waiting here for the other's rows (which they did, before) could
/// deadlock with it (Postgres finds that after `deadlock_timeout`, 1 s, then the whole batch
/// failed and paused: the steady benchmark's 1 s apply lags).
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
    let mut next: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
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

/// An event job that finished (applied or skipped), to be recorded with [`finish_events`].
#[derive(Debug, Clone)]
pub struct Finished<'a> {
    pub job: &'a ClaimedJob,
    pub outcome: Outcome,
}

/// Removes finished event jobs and records their outcomes, in the caller's transaction:
/// one statement for the whole batch. Returns whether other jobs are still pending under
/// the same ordering keys: finishing these may have made them runnable, and no wake-up
/// will say so.
pub async fn finish_events(
    conn: &mut PgConnection,
    done: &[Finished<'_>],
) -> Result<bool, sqlx::Error> {
    if done.is_empty() {
        return Ok(false);
    }
    let job_ids: Vec<i64> = done.iter().map(|f| f.job.id).collect();
    let event_ids: Vec<&str> = done.iter().map(|f| f.job.job_key.as_str()).collect();
    let keys: Vec<&str> = done
        .iter()
        .filter_map(|f| f.job.ordering_key.as_deref())
        .collect();
    let (states, notes): (Vec<&str>, Vec<Option<&str>>) = done
        .iter()
        .map(|f| match &f.outcome {
            Outcome::Applied => ("applied", None),
            Outcome::Skipped(reason) => ("skipped", Some(reason.as_str())),
        })
        .unzip();
    // Every part of the statement sees the queue as it was before the DELETE, hence the
    // `id <> ALL($1)` in the look for successors.
    sqlx::query_scalar(
        "WITH done AS (DELETE FROM jobs WHERE id = ANY($1)),
         recorded AS (
             UPDATE events e SET state = f.state, attempts = e.attempts + 1,
                    last_error = f.note, finished_at = clock_timestamp()
             FROM UNNEST($2::text[], $3::text[], $4::text[]) AS f(id, state, note)
             WHERE e.id = f.id)
         SELECT EXISTS (
             SELECT 1 FROM jobs
             WHERE ordering_key = ANY($5) AND state = 'pending' AND id <> ALL($1))",
    )
    // A generic plan made while the log was small joins by scanning it (see `claim`).
    .persistent(false)
    .bind(&job_ids)
    .bind(&event_ids)
    .bind(&states)
    .bind(&notes)
    .bind(&keys)
    .fetch_one(conn)
    .await
}

/// Drops a job whose event was pruned while it was queued: nothing is left to apply.
pub async fn drop_job(conn: &mut PgConnection, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM jobs WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// An event job's failed attempt, to be recorded with [`fail_events`].
#[derive(Debug, Clone)]
pub struct Failed<'a> {
    pub job: &'a ClaimedJob,
    pub error: String,
    pub verdict: Verdict,
}

/// Records failed attempts of event jobs run in the caller's transaction (retry later, or
/// dead), one statement for the whole batch.
pub async fn fail_events(
    conn: &mut PgConnection,
    failed: &[Failed<'_>],
) -> Result<(), sqlx::Error> {
    if failed.is_empty() {
        return Ok(());
    }
    let mut job_ids = Vec::with_capacity(failed.len());
    let mut event_ids = Vec::with_capacity(failed.len());
    let mut job_states = Vec::with_capacity(failed.len());
    let mut event_states = Vec::with_capacity(failed.len());
    let mut delays_ms = Vec::with_capacity(failed.len());
    let mut errors = Vec::with_capacity(failed.len());
    for f in failed {
        let (job_state, event_state, delay_ms) = match f.verdict {
            Verdict::RetryIn(delay) => ("pending", "failed", delay.as_millis() as i64),
            Verdict::Dead => ("dead", "dead", 0),
        };
        job_ids.push(f.job.id);
        event_ids.push(f.job.job_key.as_str());
        job_states.push(job_state);
        event_states.push(event_state);
        delays_ms.push(delay_ms);
        errors.push(f.error.as_str());
    }
    sqlx::query(
        "WITH f AS (
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[],
                                  $6::text[])
                 AS f(job_id, event_id, job_state, event_state, delay_ms, error)
         ), retried AS (
             UPDATE jobs j SET state = f.job_state, attempts = j.attempts + 1,
                    last_error = f.error,
                    run_at = now() + make_interval(secs => f.delay_ms::double precision / 1000),
                    locked_until = NULL
             FROM f WHERE j.id = f.job_id)
         UPDATE events e SET state = f.event_state, attempts = e.attempts + 1,
                last_error = f.error,
                finished_at = CASE WHEN f.event_state = 'dead' THEN now() END
         FROM f WHERE e.id = f.event_id",
    )
    // A generic plan made while the log was small joins by scanning it (see `claim`).
    .persistent(false)
    .bind(&job_ids)
    .bind(&event_ids)
    .bind(&job_states)
    .bind(&event_states)
    .bind(&delays_ms)
    .bind(&errors)
    .execute(conn)
    .await?;
    Ok(())
}

/// Puts claimed outbound jobs under a time lease (and counts the attempt); returns the
/// lease's end, which fences their completion.
pub async fn lease(
    conn: &mut PgConnection,
    ids: &[i64],
    lease: Duration,
) -> Result<DateTime<Utc>, sqlx::Error> {
    let until: DateTime<Utc> =
        sqlx::query_scalar("SELECT date_trunc('milliseconds', now()) + make_interval(secs => $1)")
            .bind(lease.as_secs_f64())
            .fetch_one(&mut *conn)
            .await?;
    sqlx::query("UPDATE jobs SET locked_until = $2, attempts = attempts + 1 WHERE id = ANY($1)")
        .bind(ids)
        .bind(until)
        .execute(conn)
        .await?;
    Ok(until)
}

/// Completes a leased job, in the transaction that commits its effects. False when the lease
/// was lost (another worker took the job over): the caller must roll back.
pub async fn complete(conn: &mut PgConnection, job: &LeasedJob) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM jobs WHERE id = $1 AND locked_until = $2")
        .bind(job.id)
        .bind(job.lease)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a failed attempt of a leased job (its attempt was counted at lease time). False
/// when the lease was lost: the job is another worker's now, and its verdict is theirs.
pub async fn fail_leased(
    pool: &PgPool,
    job: &LeasedJob,
    error: &str,
    verdict: Verdict,
) -> Result<bool, sqlx::Error> {
    let (state, delay_ms) = match verdict {
        Verdict::RetryIn(delay) => ("pending", delay.as_millis() as i64),
        Verdict::Dead => ("dead", 0),
    };
    let done = sqlx::query(
        "UPDATE jobs SET state = $3, last_error = $4, locked_until = NULL,
                run_at = now() + make_interval(secs => $5::double precision / 1000)
         WHERE id = $1 AND locked_until = $2",
    )
    .bind(job.id)
    .bind(job.lease)
    .bind(state)
    .bind(error)
    .bind(delay_ms)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Enqueues an outbound job once per `job_key`; true when it was new (see
/// [`crate::enqueue`] for typed jobs).
pub async fn enqueue(
    conn: &mut PgConnection,
    kind: &str,
    job_key: &str,
    ordering_key: Option<&str>,
    args: &serde_json::Value,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO jobs (kind, job_key, ordering_key, sort_key, args)
         VALUES ($1, $2, $3, extract(epoch FROM now())::bigint, $4)
         ON CONFLICT (job_key) DO NOTHING",
    )
    .bind(kind)
    .bind(job_key)
    .bind(ordering_key)
    .bind(args)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Tells other instances' workers that there is new work (one NOTIFY per call).
pub async fn notify_peers(pool: &PgPool, sender: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(sender)
        .execute(pool)
        .await?;
    Ok(())
}

/// Dead (and backing-off) jobs back to pending now: one by key, or every dead one.
pub async fn retry(pool: &PgPool, job_key: Option<&str>) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let keys: Vec<String> = sqlx::query_scalar(
        "UPDATE jobs SET state = 'pending', run_at = now(), attempts = 0, locked_until = NULL
         WHERE ($1::text IS NULL AND state = 'dead') OR job_key = $1
         RETURNING job_key",
    )
    .bind(job_key)
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query("UPDATE events SET state = 'received', finished_at = NULL WHERE id = ANY($1)")
        .bind(&keys)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(keys.len() as u64)
}

/// Which stored events [`replay`] queues again.
#[derive(Debug, Clone)]
pub struct Replay<'a> {
    /// Received at or after.
    pub since: DateTime<Utc>,
    pub event_type: Option<&'a str>,
    /// Only events of this mode...
    pub livemode: bool,
    /// ...and of this account, or of none (`None`: any account).
    pub account: Option<&'a str>,
}

/// Queues stored events again to be re-applied through the same handlers. Events already
/// queued are left as they are, and so are events outside the replay's mode and account (an
/// application stores those skipped, and a replay must not apply them). Returns how many
/// were queued.
pub async fn replay(pool: &PgPool, replay: &Replay<'_>) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let ids: Vec<String> = sqlx::query_scalar(
        "INSERT INTO jobs (kind, job_key, ordering_key, sort_key)
         SELECT $1, id, coalesce(customer_id, object_id), created FROM events
         WHERE received_at >= $2 AND ($3::text IS NULL OR type = $3)
           AND livemode = $4 AND ($5::text IS NULL OR account IS NULL OR account = $5)
         ORDER BY created
         ON CONFLICT (job_key) DO NOTHING
         RETURNING job_key",
    )
    .bind(EVENT_JOB)
    .bind(replay.since)
    .bind(replay.event_type)
    .bind(replay.livemode)
    .bind(replay.account)
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query("UPDATE events SET state = 'received', finished_at = NULL WHERE id = ANY($1)")
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(ids.len() as u64)
}

/// Queues again, in order, the stored events of `subject_id` that were skipped with a reason
/// starting with `reason_prefix` (what they lacked is there now), in the caller's
/// transaction. Returns how many.
pub async fn requeue_skipped(
    conn: &mut PgConnection,
    subject_id: &str,
    reason_prefix: &str,
) -> Result<u64, sqlx::Error> {
    let ids: Vec<String> = sqlx::query_scalar(
        "INSERT INTO jobs (kind, job_key, ordering_key, sort_key)
         SELECT $1, id, coalesce(customer_id, object_id), created FROM events
         WHERE customer_id = $2 AND state = 'skipped'
           AND starts_with(coalesce(last_error, ''), $3)
         ORDER BY created
         ON CONFLICT (job_key) DO NOTHING
         RETURNING job_key",
    )
    .bind(EVENT_JOB)
    .bind(subject_id)
    .bind(reason_prefix)
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query("UPDATE events SET state = 'received', finished_at = NULL WHERE id = ANY($1)")
        .bind(&ids)
        .execute(conn)
        .await?;
    Ok(ids.len() as u64)
}

/// Deletes finished events older than the retention, in chunks; returns how many.
pub async fn prune(pool: &PgPool, retention_days: u32) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    loop {
        let done = sqlx::query(
            "DELETE FROM events WHERE id IN (
                 SELECT id FROM events
                 WHERE received_at < now() - make_interval(days => $1)
                   AND state IN ('applied', 'skipped')
                 LIMIT 5000)",
        )
        .bind(retention_days as i32)
        .execute(pool)
        .await?;
        total += done.rows_affected();
        if done.rows_affected() < 5000 {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
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
