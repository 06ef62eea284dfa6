//! One step of a worker: claim a batch, apply events in the claim transaction, then run
//! leased outbound jobs outside it. Event metrics are counted once the claim commits.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures::FutureExt;
use sqlx::{Acquire, PgConnection};
use tracing::Instrument;

use super::Inner;
use super::queue::{self, ClaimedJob, Finished};
use super::registry::{LeasedJob, Outcome};
use super::retry::{JobError, Verdict};
use crate::metrics::{self, EventOutcome};

/// One attempt at an event, counted after its transaction committed.
struct Attempt {
    event_type: String,
    outcome: EventOutcome,
    elapsed: Duration,
}

/// Claims and runs one batch; returns how many jobs it took.
pub(super) async fn step(inner: &Inner) -> Result<usize, sqlx::Error> {
    let mut tx = inner.pool.begin().await?;
    let jobs = queue::claim(&mut tx, inner.settings.batch_size).await?;
    if jobs.is_empty() {
        tx.commit().await?;
        return Ok(0);
    }
    let (events, outbound): (Vec<_>, Vec<_>) = jobs.into_iter().partition(ClaimedJob::is_event);
    let mut attempts = Vec::with_capacity(events.len());
    let mut finished = Vec::with_capacity(events.len());
    for job in &events {
        match (
            job.event_type.as_deref(),
            job.event_type.as_deref().map(|t| inner.registry.event(t)),
        ) {
            // No handler: skipped without reading the payload.
            (Some(event_type), Some(None)) => {
                let reason = format!("no handler for {event_type}");
                tracing::info_span!("event", event_id = %job.job_key, event_type)
                    .in_scope(|| tracing::info!(%reason, "skipped"));
                finished.push(Finished {
                    job_id: job.id,
                    event_id: job.job_key.clone(),
                    outcome: Outcome::Skipped(reason),
                });
                attempts.push(Attempt {
                    event_type: event_type.to_owned(),
                    outcome: EventOutcome::Skipped,
                    elapsed: Duration::ZERO,
                });
            }
            _ => attempts.extend(apply_event(inner, &mut tx, job, &mut finished).await?),
        }
    }
    queue::finish_events(&mut tx, &finished).await?;
    let lease = if outbound.is_empty() {
        None
    } else {
        let ids: Vec<i64> = outbound.iter().map(|j| j.id).collect();
        Some(queue::lease(&mut tx, &ids, inner.lease()).await?)
    };
    tx.commit().await?;
    for a in attempts {
        metrics::event_processed(&a.event_type, a.outcome, a.elapsed);
    }
    if let Some(lease) = lease {
        for job in &outbound {
            let leased = LeasedJob {
                id: job.id,
                kind: job.kind.clone(),
                job_key: job.job_key.clone(),
                args: job.args.clone().unwrap_or_default(),
                attempts: job.attempts + 1,
                lease,
            };
            run_leased(inner, &leased, job).await?;
        }
    }
    Ok(events.len() + outbound.len())
}

/// Applies one event inside a savepoint of the claim transaction: its effects and its new
/// state (added to `finished`, recorded for the batch) commit together, or neither does.
/// `None` when the event is gone.
async fn apply_event(
    inner: &Inner,
    tx: &mut PgConnection,
    job: &ClaimedJob,
    finished: &mut Vec<Finished>,
) -> Result<Option<Attempt>, sqlx::Error> {
    let Some(event) = queue::load_event(tx, &job.job_key).await? else {
        // The event was pruned while queued; nothing is left to apply.
        sqlx::query("DELETE FROM jobs WHERE id = $1")
            .bind(job.id)
            .execute(&mut *tx)
            .await?;
        return Ok(None);
    };
    let span = tracing::info_span!("event", event_id = %event.id, event_type = %event.event_type);
    async {
        let started = Instant::now();
        let mut savepoint = tx.begin().await?;
        let result = match inner.registry.event(&event.event_type) {
            None => Ok(Outcome::Skipped(format!(
                "no handler for {}",
                event.event_type
            ))),
            Some(handler) => AssertUnwindSafe(handler.handle(&mut savepoint, &event))
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| Err(panicked(panic))),
        };
        let outcome = match result {
            Ok(outcome) => {
                savepoint.commit().await?;
                let kind = match &outcome {
                    Outcome::Applied => {
                        tracing::info!(micros = started.elapsed().as_micros() as u64, "applied");
                        EventOutcome::Applied
                    }
                    Outcome::Skipped(reason) => {
                        tracing::info!(%reason, "skipped");
                        EventOutcome::Skipped
                    }
                };
                finished.push(Finished {
                    job_id: job.id,
                    event_id: job.job_key.clone(),
                    outcome,
                });
                kind
            }
            Err(error) => {
                savepoint.rollback().await?;
                let verdict = inner.policy.verdict(&error, job.attempts + 1, job.age());
                log_failure(&error, verdict, job.attempts + 1);
                queue::fail_event(tx, job, &error.to_string(), verdict).await?;
                match verdict {
                    Verdict::RetryIn(_) => EventOutcome::Retry,
                    Verdict::Dead => EventOutcome::Dead,
                }
            }
        };
        Ok(Some(Attempt {
            event_type: event.event_type.clone(),
            outcome,
            elapsed: started.elapsed(),
        }))
    }
    .instrument(span)
    .await
}

/// Runs an outbound job under its lease, with no transaction open.
async fn run_leased(
    inner: &Inner,
    job: &LeasedJob,
    claimed: &ClaimedJob,
) -> Result<(), sqlx::Error> {
    let span = tracing::info_span!("job", job_kind = %job.kind, job_key = %job.job_key);
    async {
        let result = match inner.registry.job(&job.kind) {
            None => Err(JobError::permanent(anyhow::anyhow!(
                "no handler for job kind {}",
                job.kind
            ))),
            Some(handler) => AssertUnwindSafe(handler.run(&inner.pool, job))
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| Err(panicked(panic))),
        };
        match result {
            Ok(()) => {
                // Handlers with effects complete in their own transaction; this is a no-op then.
                let mut conn = inner.pool.acquire().await?;
                queue::complete(&mut conn, job).await?;
                tracing::info!("job done");
            }
            Err(error) => {
                let verdict = inner.policy.verdict(&error, job.attempts, claimed.age());
                log_failure(&error, verdict, job.attempts);
                queue::fail_leased(&inner.pool, job, &error.to_string(), verdict).await?;
                match verdict {
                    Verdict::RetryIn(_) => metrics::job_retried(&job.kind),
                    Verdict::Dead => metrics::dead_letter(&job.kind),
                }
            }
        }
        Ok(())
    }
    .instrument(span)
    .await
}

fn panicked(panic: Box<dyn std::any::Any + Send>) -> JobError {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    JobError::permanent(anyhow::anyhow!("handler panicked: {message}"))
}

fn log_failure(error: &JobError, verdict: Verdict, attempts: i32) {
    match verdict {
        Verdict::RetryIn(delay) => {
            tracing::warn!(%error, attempts, retry_in_ms = delay.as_millis() as u64, "failed; will retry")
        }
        Verdict::Dead => tracing::error!(%error, attempts, "failed; moved to dead letters"),
    }
}
