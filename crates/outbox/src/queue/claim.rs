//! Claiming: the heads of ordering keys, the runs queued behind them, and their events, in
//! one call.

use sqlx::PgConnection;

use super::ClaimedJob;
use crate::{EVENT_JOB, StoredEvent};

/// Claims up to `limit` runnable jobs, oldest first, locking them in `conn`'s transaction.
///
/// The claim is the SQL function `claim_jobs` (migrations 23, 31, 33): it walks the queue's
/// index in order and probes each candidate's ordering key once, under planner settings that
/// its own `SET` clauses scope to it, so the handlers that run next in the same transaction
/// are planned as the server is configured. Those settings also make its kept plan safe: a
/// generic plan made while `jobs` was nearly empty can only walk the indexes (one that
/// scanned the whole queue per candidate made each claim of a 20k backlog take 7 s, and the
/// function was planned on every call until migration 33).
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

/// A worker's claim, in one round trip (`claim_batch`, migration 33): up to `limit` jobs,
/// each with its event if it is an event job. First the heads ([`claim`]), then the events
/// queued right behind the event heads ([`claim_followers`], up to [`FOLLOWERS_PER_KEY`] a
/// key, after every head so each key's events stay in order), as long as the batch has room.
/// Only events of a `handled` type carry their payload (others are skipped unread; theirs is
/// empty); a pruned event is missing (`None`).
pub async fn claim_batch(
    conn: &mut PgConnection,
    limit: i64,
    handled: &[&str],
) -> Result<Vec<(ClaimedJob, Option<StoredEvent>)>, sqlx::Error> {
    let rows: Vec<BatchRow> = sqlx::query_as(
        "SELECT id, kind, job_key, ordering_key, args, attempts, enqueued_at,
                type, created, customer_id, object_id, payload
         FROM claim_batch($1, $2, $3, $4)",
    )
    .bind(limit)
    .bind(FOLLOWERS_PER_KEY)
    .bind(EVENT_JOB)
    .bind(handled)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(BatchRow::split).collect())
}

/// A row of `claim_batch`: a job, and its event's columns if it has one.
#[derive(sqlx::FromRow)]
struct BatchRow {
    #[sqlx(flatten)]
    job: ClaimedJob,
    #[sqlx(rename = "type")]
    event_type: Option<String>,
    created: Option<i64>,
    customer_id: Option<String>,
    object_id: Option<String>,
    payload: Option<Vec<u8>>,
}

impl BatchRow {
    fn split(self) -> (ClaimedJob, Option<StoredEvent>) {
        let event = match (self.event_type, self.created) {
            (Some(event_type), Some(created)) => Some(StoredEvent {
                id: self.job.job_key.clone(),
                event_type,
                created,
                subject_id: self.customer_id,
                object_id: self.object_id,
                payload: self.payload.unwrap_or_default().into(),
            }),
            _ => None,
        };
        (self.job, event)
    }
}

/// The event jobs queued right behind claimed event heads (`heads`, their ids), up to
/// `limit` and [`FOLLOWERS_PER_KEY`] a key, in key order, locked in `conn`'s transaction
/// (the SQL function `claim_followers` that [`claim_batch`] runs after the heads): a
/// customer's burst of events is applied in one batch, in order, instead of one batch per
/// event. Only an unbroken run of due event jobs right after its head follows it; an
/// outbound job or one waiting for its retry ends its key's run.
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
    sqlx::query_as(
        "SELECT j.id, j.kind, j.job_key, j.ordering_key, j.args, j.attempts, j.enqueued_at
         FROM claim_followers($1, $2, $3, $4) WITH ORDINALITY AS f(id, n)
         JOIN jobs j ON j.id = f.id
         ORDER BY f.n",
    )
    .bind(heads)
    .bind(limit)
    .bind(EVENT_JOB)
    .bind(FOLLOWERS_PER_KEY)
    .fetch_all(conn)
    .await
}
