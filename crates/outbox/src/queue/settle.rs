//! Settling claimed jobs: finished and failed events (in the claim transaction), leases of
//! outbound jobs and how they end.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::ClaimedJob;
use crate::{LeasedJob, Outcome, Verdict};

/// An event job that finished (applied or skipped), to be recorded with [`finish_events`].
#[derive(Debug, Clone)]
pub struct Finished<'a> {
    pub job: &'a ClaimedJob,
    pub outcome: Outcome,
}

/// Removes finished event jobs and records their outcomes, in the caller's transaction:
/// one call for the whole batch. Returns whether other jobs are still pending under
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
    // One call (`finish_events`, migration 33): the jobs deleted, the events' outcomes
    // recorded, and a probe of the ordering index per key for jobs queued behind them.
    sqlx::query_scalar("SELECT finish_events($1, $2, $3, $4, $5)")
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
