//! The queue's SQL: claim ([`claim`]: heads, their followers, their events), settle
//! ([`settle`]: finish, fail, lease, complete), and here enqueue, retry, replay, prune.
//!
//! A job is runnable when it is pending, due, not under a live lease, the head of its
//! ordering key (no earlier pending job shares the key), and its key is not held by another
//! claim (a transaction-scoped advisory lock the claim takes per head's key, migration 31: an
//! event that arrives late, with an earlier `created` than one being applied, waits for that
//! one). Claims take runnable rows with `FOR UPDATE SKIP LOCKED`, so concurrent claimers
//! never take the same row, and a job whose predecessor is being worked on is not even a
//! candidate: per-key order and exclusion hold across processes.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use crate::EVENT_JOB;

mod claim;
mod settle;

pub use claim::{FOLLOWERS_PER_KEY, claim, claim_batch, claim_followers};
pub use settle::{
    Failed, Finished, complete, drop_job, fail_events, fail_leased, finish_events, lease,
};

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

/// Queues again, in order, the stored events of the `subject_ids` that were skipped with a
/// reason starting with `reason_prefix` (what they lacked is there now), in the caller's
/// transaction, in one statement. Returns how many.
pub async fn requeue_skipped<S: AsRef<str> + Sync>(
    conn: &mut PgConnection,
    subject_ids: &[S],
    reason_prefix: &str,
) -> Result<u64, sqlx::Error> {
    let subject_ids: Vec<&str> = subject_ids.iter().map(AsRef::as_ref).collect();
    let requeued = sqlx::query(
        "WITH queued AS (
             INSERT INTO jobs (kind, job_key, ordering_key, sort_key)
             SELECT $1, id, coalesce(customer_id, object_id), created FROM events
             WHERE customer_id = ANY($2) AND state = 'skipped'
               AND starts_with(coalesce(last_error, ''), $3)
             ORDER BY created
             ON CONFLICT (job_key) DO NOTHING
             RETURNING job_key)
         UPDATE events SET state = 'received', finished_at = NULL
         WHERE id IN (SELECT job_key FROM queued)",
    )
    .bind(EVENT_JOB)
    .bind(&subject_ids)
    .bind(reason_prefix)
    .execute(conn)
    .await?;
    Ok(requeued.rows_affected())
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
