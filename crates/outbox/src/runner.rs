//! The runner: worker loops that apply stored events and run outbound jobs, the LISTEN
//! task, the peer notifier and the pruner.
//!
//! Tests call [`Engine::run_until_idle`] to drain the queue deterministically.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::FutureExt;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::heartbeat::{Heartbeats, WorkerStalled};
use crate::shared::Inner;
use crate::{EngineSettings, Registry, RetryPolicy, Wakeup, queue, worker};

/// A handle on the engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// How long a worker may be silent before it counts as stuck: its longest pause, one batch
/// (whose outbound jobs must end within their lease), and a margin for a slow database.
fn stall_limit(inner: &Inner) -> Duration {
    let poll = Duration::from_millis(inner.settings.poll_interval_ms);
    poll.max(error_pause(u32::MAX)) + inner.lease() + STALL_MARGIN
}

/// How long a worker other than the first waits while ingest is under a burst.
const YIELD_PAUSE: Duration = Duration::from_millis(5);

/// Workers stop giving way to ingest once applying lags this far behind.
const YIELD_MAX_LAG: Duration = Duration::from_secs(30);

/// Slack on top of a worker's longest legitimate silence.
const STALL_MARGIN: Duration = Duration::from_secs(10);

/// The pause after `failures` failed claims in a row: 200 ms, doubling up to 6.4 s.
const fn error_pause(failures: u32) -> Duration {
    let exponent = if failures < 6 { failures } else { 6 };
    Duration::from_millis(100 << exponent)
}

impl Engine {
    pub fn new(
        pool: PgPool,
        registry: Registry,
        settings: EngineSettings,
        wakeup: Arc<Wakeup>,
    ) -> Self {
        let policy = RetryPolicy::new(&settings);
        let heartbeats = Heartbeats::new(settings.workers);
        Self {
            inner: Arc::new(Inner {
                pool,
                registry,
                policy,
                settings,
                wakeup,
                heartbeats,
                claimed_age_ms: AtomicU64::new(0),
            }),
        }
    }

    /// Claims and runs one batch; returns how many jobs it took (0: nothing runnable).
    pub async fn step(&self) -> Result<usize, sqlx::Error> {
        Ok(worker::step(&self.inner).await?.jobs)
    }

    /// Runs batches until nothing is runnable; returns how many jobs ran. Jobs waiting for
    /// a retry delay or a lease to end are not runnable yet.
    pub async fn run_until_idle(&self) -> Result<usize, sqlx::Error> {
        let mut total = 0;
        loop {
            match self.step().await? {
                0 => return Ok(total),
                n => total += n,
            }
        }
    }

    /// Starts the worker loops, the LISTEN task, the peer notifier and the pruner on
    /// `tasks`; they stop at `shutdown`, a worker after finishing its batch.
    pub fn start(&self, tasks: &TaskTracker, shutdown: &CancellationToken) {
        let settings = &self.inner.settings;
        for n in 0..settings.workers {
            self.inner.heartbeats.beat(n);
            tasks.spawn(self.clone().worker_loop(n, shutdown.clone()));
        }
        let wakeup = self.inner.wakeup.clone();
        let pool = self.inner.pool.clone();
        tasks.spawn(wakeup.clone().listen(pool.clone(), shutdown.clone()));
        let interval = Duration::from_millis(settings.notify_interval_ms);
        tasks.spawn(wakeup.notify_peers_loop(pool, interval, shutdown.clone()));
        tasks.spawn(self.clone().prune_loop(shutdown.clone()));
    }

    /// `Err` when a worker loop has not come round in time (see [`heartbeat`]); with no
    /// workers, always `Ok`.
    pub fn check_workers(&self) -> Result<(), WorkerStalled> {
        let inner = &self.inner;
        inner.heartbeats.check(stall_limit(inner), Instant::now())
    }

    /// True while a burst of deliveries waits for its commit and applying is not yet more
    /// than `YIELD_MAX_LAG` behind: a short burst is acknowledged first, a sustained load
    /// never starves applying.
    fn yields_to_ingest(&self) -> bool {
        let yield_at = self.inner.settings.yield_to_ingest_at;
        yield_at > 0
            && self.inner.wakeup.deliveries_waiting() >= yield_at
            && self.inner.claimed_age_ms.load(Ordering::Relaxed) < YIELD_MAX_LAG.as_millis() as u64
    }

    async fn worker_loop(self, n: usize, shutdown: CancellationToken) {
        let poll = Duration::from_millis(self.inner.settings.poll_interval_ms);
        let mut failures = 0u32;
        while !shutdown.is_cancelled() {
            self.inner.heartbeats.beat(n);
            if n > 0 && self.yields_to_ingest() {
                // A burst: give the CPU and the database to acknowledging it. Worker 0 keeps
                // applying, the others rejoin once the burst has been stored.
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(YIELD_PAUSE) => continue,
                }
            }
            // Register for wake-ups before looking, so none is missed in between.
            let woken = self.inner.wakeup.local.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let pause = match worker::step(&self.inner).await {
                Ok(batch) => {
                    if batch.jobs > 0 {
                        failures = 0;
                    }
                    let full = batch.jobs >= self.inner.settings.batch_size as usize;
                    if full || batch.unblocked || batch.fresh {
                        // More is likely runnable: a full batch left some behind, or
                        // finishing this one freed queued work (the next event of a key)
                        // that no wake-up will announce. Look again at once; a wake-up that
                        // came meanwhile is answered by this claim, and passing it on would
                        // send another worker to find nothing. After a full batch, one more
                        // worker looks too.
                        let _ = woken.as_mut().now_or_never();
                        if full {
                            self.inner.wakeup.found_work();
                        }
                        continue;
                    }
                    // The claim took all that was runnable and nothing waits behind it:
                    // wait for the next wake-up (one that came during the batch is already
                    // in `woken`). Claiming again at once would mostly find nothing, or
                    // split the next few events with the worker their commit woke, in
                    // batches too small to pay for themselves.
                    poll
                }
                Err(error) => {
                    failures += 1;
                    let pause = error_pause(failures);
                    tracing::warn!(worker = n, %error, ?pause, "claim failed; database unavailable?");
                    pause
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = &mut woken => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
        tracing::debug!(worker = n, "worker stopped");
    }

    async fn prune_loop(self, shutdown: CancellationToken) {
        let every = Duration::from_secs(self.inner.settings.prune_interval_secs.max(1));
        loop {
            match queue::prune(&self.inner.pool, self.inner.settings.retention_days).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(pruned = n, "pruned events past retention"),
                Err(error) => tracing::warn!(%error, "pruning failed"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}
