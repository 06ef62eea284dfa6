//! One step of a worker: claim a batch, apply its events in the claim transaction (in waves
//! of independent events, each handler's share of a wave in one call), then run leased
//! outbound jobs outside it. Event metrics are counted once the claim commits.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::FutureExt;
use sqlx::{Acquire, PgConnection};
use tracing::Instrument;

use crate::metrics::{self, EventOutcome};
use crate::queue::{self, ClaimedJob, Failed, Finished};
use crate::registry::{DynEventHandler, handle_each};
use crate::shared::Inner;
use crate::{JobError, LeasedJob, Outcome, StoredEvent, Verdict};

/// One attempt at an event, counted after its transaction committed.
struct Attempt {
    event_type: String,
    outcome: EventOutcome,
    elapsed: Duration,
    /// When its job was queued: the apply lag is measured from it once the claim commits.
    enqueued_at: chrono::DateTime<chrono::Utc>,
}

/// How a claim transaction begins, in one round trip.
///
/// Applying does not wait for its commit to reach the disk. The events are durable already
/// (ingest commits synchronously); a crash of Postgres can only lose the last applies and
/// their job deletions together, so those events are simply applied again, in order.
///
/// Nothing else is set for the transaction: the claim's planner settings live on the
/// `claim_jobs` function (migration 23) and end with it, so the handlers' statements are
/// planned as the server is configured (with `enable_sort = off` for the whole transaction, a
/// handler query that had to sort was costed at 10^10 and JIT-compiled, ~300 ms each).
const APPLY_BEGIN: &str = "BEGIN; SET LOCAL synchronous_commit = off";

/// How a batch applies its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// In waves of independent events (no two of a key), each wave's events of one handler
    /// applied together (`handle_many`), with no savepoints: the first failure rolls the
    /// whole batch back, to be run carefully (unless it is [`JobError::Unreadable`]: raised
    /// before the handler wrote anything for that event).
    Fast,
    /// A savepoint per event, so a failure is recorded and the rest still commit.
    Careful,
}

/// A fast batch met a failing event and rolled back.
struct RolledBack;

/// Where an event's attempt is written down, for the batch's closing statements.
struct Done<'a, 'j> {
    finished: &'a mut Vec<Finished<'j>>,
    failed: &'a mut Vec<Failed<'j>>,
}

/// What one batch did.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Batch {
    /// Jobs claimed.
    pub jobs: usize,
    /// Work may be runnable that no wake-up will announce: jobs queued behind the finished
    /// ones under the same ordering keys, or successors of outbound jobs that ran.
    pub unblocked: bool,
    /// Jobs were stored while the batch was applied, and no idle worker was woken for them
    /// ([`crate::Wakeup::stored`]): this one looks again.
    pub fresh: bool,
}

/// Claims and runs one batch.
///
/// Events almost always apply, so a batch first runs fast: in waves of independent events,
/// a handler's events of a wave in one call, without savepoints (two round trips fewer per
/// event, and a statement for many rows where the handler can). If any handler fails or
/// panics, that transaction rolls back as a whole and the batch is claimed again and run one
/// event at a time, with a savepoint each, which records the failure and commits the others.
pub(crate) async fn step(inner: &Inner) -> Result<Batch, sqlx::Error> {
    match batch(inner, Mode::Fast).await? {
        Ok(done) => Ok(done),
        Err(RolledBack) => Ok(batch(inner, Mode::Careful)
            .await?
            .unwrap_or_else(|RolledBack| unreachable!("a careful batch never rolls back"))),
    }
}

async fn batch(inner: &Inner, mode: Mode) -> Result<Result<Batch, RolledBack>, sqlx::Error> {
    // Busy until the claim commits (not while outbound jobs call out after it).
    let busy = inner.wakeup.busy();
    let started = Instant::now();
    let mut tx = inner.pool.begin_with(APPLY_BEGIN).await?;
    // The heads, the events queued right behind them, and their events: one call.
    let handled: Vec<&str> = inner.registry.event_types().collect();
    let claimed = queue::claim_batch(&mut tx, inner.settings.batch_size, &handled).await?;
    let oldest = claimed
        .iter()
        .map(|(job, _)| job.age())
        .max()
        .unwrap_or_default();
    inner
        .claimed_age_ms
        .store(oldest.as_millis() as u64, Ordering::Relaxed);
    if claimed.is_empty() {
        tx.commit().await?;
        return Ok(Ok(Batch {
            fresh: busy.end(),
            ..Batch::default()
        }));
    }
    let mut stored: HashMap<String, StoredEvent> = HashMap::with_capacity(claimed.len());
    let mut jobs = Vec::with_capacity(claimed.len());
    for (job, event) in claimed {
        if let Some(event) = event {
            stored.insert(event.id.clone(), event);
        }
        jobs.push(job);
    }
    let (events, outbound): (Vec<_>, Vec<_>) = jobs.into_iter().partition(ClaimedJob::is_event);
    let mut attempts = Vec::with_capacity(events.len());
    let mut finished = Vec::with_capacity(events.len());
    let mut failed = Vec::new();
    // Keys whose event failed and will be retried: their later events wait for it.
    let mut held: HashSet<&str> = HashSet::new();
    let queued: Vec<&ClaimedJob> = events.iter().collect();
    for wave in waves(&queued, mode) {
        // The wave's events by handler, in their order (one handler may serve many types).
        let mut groups: Vec<Group<'_, '_>> = Vec::new();
        for job in wave {
            if job
                .ordering_key
                .as_deref()
                .is_some_and(|k| held.contains(k))
            {
                continue; // left pending, behind its key's retry
            }
            let Some(event) = stored.remove(&job.job_key) else {
                // The event was pruned while queued; nothing is left to apply.
                queue::drop_job(&mut tx, job.id).await?;
                continue;
            };
            match inner.registry.event(&event.event_type) {
                None => {
                    let reason = format!("no handler for {}", event.event_type);
                    event_span(&event).in_scope(|| tracing::info!(%reason, "skipped"));
                    finished.push(Finished {
                        job,
                        outcome: Outcome::Skipped(reason),
                    });
                    attempts.push(Attempt {
                        event_type: event.event_type,
                        outcome: EventOutcome::Skipped,
                        elapsed: Duration::ZERO,
                        enqueued_at: job.enqueued_at,
                    });
                }
                Some(handler) => {
                    match groups.iter_mut().find(|g| Arc::ptr_eq(g.handler, handler)) {
                        Some(group) => group.members.push((job, event)),
                        None => groups.push(Group {
                            handler,
                            members: vec![(job, event)],
                        }),
                    }
                }
            }
        }
        for group in groups {
            let done = Done {
                finished: &mut finished,
                failed: &mut failed,
            };
            let applied = match mode {
                Mode::Fast => apply_together(inner, &mut tx, &group, done).await?,
                Mode::Careful => {
                    let [(job, event)] = &group.members[..] else {
                        unreachable!("a careful wave has one event")
                    };
                    let handler = group.handler.as_ref();
                    Ok(vec![
                        apply_event(inner, &mut tx, job, event, handler, done).await?,
                    ])
                }
            };
            let Ok(applied) = applied else {
                tx.rollback().await?;
                return Ok(Err(RolledBack));
            };
            for (attempt, (job, _)) in applied.into_iter().zip(&group.members) {
                if attempt.outcome == EventOutcome::Retry
                    && let Some(key) = job.ordering_key.as_deref()
                {
                    held.insert(key);
                }
                attempts.push(attempt);
            }
        }
    }
    queue::fail_events(&mut tx, &failed).await?;
    let queued_behind = queue::finish_events(&mut tx, &finished).await?;
    let lease = if outbound.is_empty() {
        None
    } else {
        let ids: Vec<i64> = outbound.iter().map(|j| j.id).collect();
        Some(queue::lease(&mut tx, &ids, inner.lease()).await?)
    };
    tx.commit().await?;
    let fresh = busy.end();
    tracing::debug!(
        events = events.len(),
        outbound = outbound.len(),
        micros = started.elapsed().as_micros() as u64,
        "batch committed"
    );
    for a in attempts {
        metrics::event_processed(&a.event_type, a.outcome, a.elapsed);
        metrics::event_finished(a.outcome, a.enqueued_at);
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
    // An event that failed (to retry later, or dead) or was pruned also leaves its queue
    // position; dead ones no longer hold back their successors.
    let all_finished = finished.len() == events.len();
    Ok(Ok(Batch {
        jobs: events.len() + outbound.len(),
        unblocked: queued_behind || !all_finished || !outbound.is_empty(),
        fresh,
    }))
}

/// A wave's events that one handler applies, with their jobs, in the wave's order.
struct Group<'h, 'j> {
    handler: &'h Arc<dyn DynEventHandler>,
    members: Vec<(&'j ClaimedJob, StoredEvent)>,
}

/// The batch's events in waves, applied one wave after the other. Fast: the n-th wave holds
/// the n-th event of each ordering key (so a key's events keep their order, and the events
/// of a wave are independent and can be applied together); an event without a key is in
/// the first. Careful: one event a wave, in the claim's order.
fn waves<'j>(events: &[&'j ClaimedJob], mode: Mode) -> Vec<Vec<&'j ClaimedJob>> {
    if mode == Mode::Careful {
        return events.iter().map(|job| vec![*job]).collect();
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut waves: Vec<Vec<&ClaimedJob>> = Vec::new();
    for job in events {
        let n = match job.ordering_key.as_deref() {
            Some(key) => {
                let n = seen.entry(key).or_insert(0);
                *n += 1;
                *n - 1
            }
            None => 0,
        };
        if waves.len() <= n {
            waves.resize_with(n + 1, Vec::new);
        }
        waves[n].push(*job);
    }
    waves
}

/// Applies a fast batch's group of independent events with one [`EventHandler::handle_many`]
/// call (with `engine.apply_together` off, or fewer events than the handler's
/// `TOGETHER_FROM`, a `handle` call each), in the claim transaction
/// (no savepoint): `Err(RolledBack)` when it failed, for the caller to roll the batch back
/// and run it carefully.
///
/// [`EventHandler::handle_many`]: crate::EventHandler::handle_many
async fn apply_together<'j>(
    inner: &Inner,
    tx: &mut PgConnection,
    group: &Group<'_, 'j>,
    done: Done<'_, 'j>,
) -> Result<Result<Vec<Attempt>, RolledBack>, sqlx::Error> {
    let started = Instant::now();
    let events: Vec<&StoredEvent> = group.members.iter().map(|(_, e)| e).collect();
    let handler = group.handler.as_ref();
    let answers = if inner.settings.apply_together && events.len() >= handler.together_from() {
        guarded(handler.handle_many(&mut *tx, &events)).await
    } else {
        guarded(handle_each(handler, &mut *tx, &events)).await
    };
    let answers = match answers {
        Ok(answers) if answers.len() == events.len() => answers,
        Ok(answers) => {
            tracing::error!(
                events = events.len(),
                answers = answers.len(),
                "a handler answered for another number of events; applying them one by one"
            );
            return Ok(Err(RolledBack));
        }
        Err(_) => return Ok(Err(RolledBack)),
    };
    // Only an event that could not be read may fail on its own (nothing was written for it).
    if answers
        .iter()
        .any(|a| matches!(a, Err(e) if !matches!(e, JobError::Unreadable(_))))
    {
        return Ok(Err(RolledBack));
    }
    let elapsed = started.elapsed() / events.len().max(1) as u32;
    let Done { finished, failed } = done;
    let attempts = group
        .members
        .iter()
        .zip(answers)
        .map(|((job, event), answer)| {
            event_span(event).in_scope(|| {
                let done = Done {
                    finished: &mut *finished,
                    failed: &mut *failed,
                };
                record(inner, job, event, answer, elapsed, done)
            })
        })
        .collect();
    Ok(Ok(attempts))
}

/// Applies one event of a careful batch in the claim transaction, under a savepoint: its
/// effects and its new state (added to `done`, recorded for the batch) commit together, or
/// a failure is recorded and the rest of the batch still commits.
async fn apply_event<'j>(
    inner: &Inner,
    tx: &mut PgConnection,
    job: &'j ClaimedJob,
    event: &StoredEvent,
    handler: &dyn DynEventHandler,
    done: Done<'_, 'j>,
) -> Result<Attempt, sqlx::Error> {
    async {
        let started = Instant::now();
        let mut savepoint = tx.begin().await?;
        let result = guarded(handler.handle(&mut savepoint, event)).await;
        match result {
            Ok(_) => savepoint.commit().await?,
            Err(_) => savepoint.rollback().await?,
        }
        Ok(record(inner, job, event, result, started.elapsed(), done))
    }
    .instrument(event_span(event))
    .await
}

/// An event's result written down for the batch's closing statements (and logged): its
/// outcome, or its failure with the policy's verdict.
fn record<'j>(
    inner: &Inner,
    job: &'j ClaimedJob,
    event: &StoredEvent,
    result: Result<Outcome, JobError>,
    elapsed: Duration,
    done: Done<'_, 'j>,
) -> Attempt {
    let outcome = match result {
        Ok(outcome) => {
            let kind = log_outcome(&outcome, elapsed);
            done.finished.push(Finished { job, outcome });
            kind
        }
        Err(error) => {
            let verdict = inner.policy.verdict(&error, job.attempts + 1, job.age());
            log_failure(&error, verdict, job.attempts + 1);
            done.failed.push(Failed {
                job,
                error: error.to_string(),
                verdict,
            });
            match verdict {
                Verdict::RetryIn(_) => EventOutcome::Retry,
                Verdict::Dead => EventOutcome::Dead,
            }
        }
    };
    Attempt {
        event_type: event.event_type.clone(),
        outcome,
        elapsed,
        enqueued_at: job.enqueued_at,
    }
}

fn event_span(event: &StoredEvent) -> tracing::Span {
    tracing::info_span!("event", event_id = %event.id, event_type = %event.event_type)
}

/// Runs a handler's future, turning a panic into a permanent failure.
async fn guarded<T>(
    work: impl std::future::Future<Output = Result<T, JobError>>,
) -> Result<T, JobError> {
    AssertUnwindSafe(work)
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| Err(panicked(panic)))
}

fn log_outcome(outcome: &Outcome, elapsed: Duration) -> EventOutcome {
    match outcome {
        Outcome::Applied => {
            tracing::debug!(micros = elapsed.as_micros() as u64, "applied");
            EventOutcome::Applied
        }
        Outcome::Skipped(reason) => {
            tracing::info!(%reason, "skipped");
            EventOutcome::Skipped
        }
    }
}

/// Runs an outbound job under its lease, with no transaction open.
async fn run_leased(
    inner: &Inner,
    job: &LeasedJob,
    claimed: &ClaimedJob,
) -> Result<(), sqlx::Error> {
    let span = tracing::info_span!("job", job_kind = %job.kind, job_key = %job.job_key);
    async {
        let handler = inner.registry.job(&job.kind);
        let result = match handler {
            None => Err(JobError::permanent(anyhow::anyhow!(
                "no handler for job kind {}",
                job.kind
            ))),
            Some(handler) => guarded(handler.run(&inner.pool, job)).await,
        };
        match result {
            // Completed by the job itself, in the transaction of its effects.
            Ok(_done) => tracing::info!("job done"),
            Err(error) => {
                let verdict = inner.policy.verdict(&error, job.attempts, claimed.age());
                log_failure(&error, verdict, job.attempts);
                let message = error.to_string();
                if !queue::fail_leased(&inner.pool, job, &message, verdict).await? {
                    return Ok(()); // the lease was lost: the job and its verdict are not ours
                }
                match verdict {
                    Verdict::RetryIn(_) => metrics::job_retried(&job.kind),
                    Verdict::Dead => {
                        metrics::dead_letter(&job.kind);
                        if let Some(handler) = handler {
                            handler.on_dead(&inner.pool, job, &message).await?;
                        }
                    }
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
