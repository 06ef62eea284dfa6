//! Waking workers: in-process at once, other instances through LISTEN/NOTIFY.
//!
//! Ingest calls [`Wakeup::stored`] after each commit that stored new events. Local workers
//! wake at once, one per `WAKE_PER_WORKER` new jobs, unless `STREAM_WORKERS` are busy already:
//! those look again when their claims commit ([`Busy`]). A worker that claims a full batch
//! wakes the next one, so a backlog draws in every worker while a stream keeps two busy
//! instead of sending them all to race for the same rows in small batches. Workers other than the first pause while a
//! burst of deliveries awaits its commit ([`Wakeup::delivering`]). A notifier task sends at
//! most one `NOTIFY` per interval to other instances (a NOTIFY per event would serialise
//! commits on its database-wide lock). Each instance LISTENs; a lost LISTEN connection
//! reconnects by itself, and workers poll as a fallback.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::queue::{self, CHANNEL};

pub struct Wakeup {
    pub(crate) local: Notify,
    /// Deliveries waiting for their ingest commit (see [`Wakeup::delivering`]).
    delivering: AtomicUsize,
    /// Local workers claiming or applying a batch now.
    active: AtomicUsize,
    /// Jobs were stored since a local worker last began a batch.
    fresh: AtomicBool,
    peers: Notify,
    /// Our NOTIFY payload, so we ignore our own notifications.
    instance: String,
}

impl Default for Wakeup {
    fn default() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        Self {
            local: Notify::new(),
            delivering: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            fresh: AtomicBool::new(false),
            peers: Notify::new(),
            instance: format!("{}-{nanos:x}", std::process::id()),
        }
    }
}

/// Busy local workers below which [`Wakeup::stored`] wakes another.
const STREAM_WORKERS: usize = 2;

/// New jobs per local worker woken by [`Wakeup::stored`].
const WAKE_PER_WORKER: usize = 8;

impl Wakeup {
    /// `jobs` new jobs were committed by this process. While a local worker is busy, none is
    /// woken: the busy one looks again when its batch ends ([`Busy::end`]), so a
    /// steady stream keeps one worker applying instead of splitting into small concurrent
    /// batches (more claims, more contention: measured at a steady 1,000/s, p99 apply lag
    /// 96-113 ms with four workers woken as events came, 70-81 ms with two); a backlog draws
    /// in the others through full batches ([`Wakeup::found_work`]).
    pub fn stored(&self, jobs: usize) {
        // The flag is set before `active` is read, and `Busy::end` lowers `active` before it
        // reads the flag: either the busy worker sees the flag or this sees no busy worker.
        self.fresh.store(true, Ordering::SeqCst);
        if self.active.load(Ordering::SeqCst) < STREAM_WORKERS {
            for _ in 0..jobs.div_ceil(WAKE_PER_WORKER).clamp(1, 16) {
                self.local.notify_one();
            }
        }
        self.peers.notify_one();
    }

    /// A local worker begins a batch: the jobs stored so far are its claim's to see. It is
    /// busy until [`Busy::end`] (or the guard drops, as when the batch fails).
    pub(crate) fn busy(&self) -> Busy<'_> {
        self.active.fetch_add(1, Ordering::SeqCst);
        self.fresh.store(false, Ordering::SeqCst);
        Busy {
            wakeup: self,
            ended: false,
        }
    }

    /// Counts a delivery as waiting for its commit until the guard drops (also when the
    /// request is abandoned half-way), so workers can give way to a burst.
    pub fn delivering(&self) -> Delivering<'_> {
        self.delivering.fetch_add(1, Ordering::SeqCst);
        Delivering(self)
    }

    /// Deliveries waiting for their ingest commit now.
    pub(crate) fn deliveries_waiting(&self) -> usize {
        self.delivering.load(Ordering::SeqCst)
    }

    /// A worker claimed a full batch: there is likely more, so one more worker looks.
    pub(crate) fn found_work(&self) {
        self.local.notify_one();
    }

    /// Keeps a LISTEN connection and wakes local workers when another instance stored work.
    pub(crate) async fn listen(self: Arc<Self>, pool: PgPool, shutdown: CancellationToken) {
        let mut listener: Option<PgListener> = None;
        loop {
            let current = match listener.as_mut() {
                Some(l) => l,
                None => match connect(&pool).await {
                    Ok(l) => {
                        // Notifications sent while we were away are lost: look once.
                        self.local.notify_waiters();
                        listener.insert(l)
                    }
                    Err(error) => {
                        tracing::warn!(%error, "LISTEN connection failed; retrying");
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        }
                    }
                },
            };
            let received = tokio::select! {
                _ = shutdown.cancelled() => return,
                received = current.try_recv() => received,
            };
            match received {
                Ok(Some(n)) if n.payload() != self.instance => self.local.notify_waiters(),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    // The connection was lost (for example terminated by an admin).
                    tracing::warn!("LISTEN connection lost; reconnecting");
                    listener = None;
                }
            }
        }
    }

    /// Sends at most one NOTIFY per `interval` while this process stores new work.
    pub(crate) async fn notify_peers_loop(
        self: Arc<Self>,
        pool: PgPool,
        interval: Duration,
        shutdown: CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.peers.notified() => {}
            }
            if let Err(error) = queue::notify_peers(&pool, &self.instance).await {
                tracing::debug!(%error, "NOTIFY failed; peers will poll");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }
}

/// A delivery waiting for its commit; see [`Wakeup::delivering`].
pub struct Delivering<'a>(&'a Wakeup);

impl Drop for Delivering<'_> {
    fn drop(&mut self) {
        self.0.delivering.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.ignore_pool_close_event(true);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// A local worker's batch in progress ([`Wakeup::busy`]).
pub(crate) struct Busy<'a> {
    wakeup: &'a Wakeup,
    ended: bool,
}

impl Busy<'_> {
    /// The batch's claim committed; true when jobs were stored since a batch began (no
    /// worker was woken for them: this one looks again).
    pub(crate) fn end(mut self) -> bool {
        self.ended = true;
        self.wakeup.active.fetch_sub(1, Ordering::SeqCst);
        self.wakeup.fresh.swap(false, Ordering::SeqCst)
    }
}

impl Drop for Busy<'_> {
    /// A batch that failed or rolled back: jobs stored meanwhile wake a worker, since this
    /// one may pause.
    fn drop(&mut self) {
        if !self.ended {
            self.wakeup.active.fetch_sub(1, Ordering::SeqCst);
            if self.wakeup.fresh.swap(false, Ordering::SeqCst) {
                self.wakeup.local.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    #[test]
    fn a_delivery_counts_until_its_guard_drops_even_when_abandoned() {
        let wakeup = Wakeup::default();
        let first = wakeup.delivering();
        let second = wakeup.delivering();
        assert_eq!(wakeup.deliveries_waiting(), 2);
        drop(first);
        assert_eq!(wakeup.deliveries_waiting(), 1);
        // A request future dropped half-way (the client went away) drops its guard too.
        let abandoned = async move {
            let _guard = second;
            std::future::pending::<()>().await
        };
        drop(abandoned);
        assert_eq!(wakeup.deliveries_waiting(), 0);
    }

    /// Whether a wake-up is pending for a worker that starts waiting now.
    fn woken(wakeup: &Wakeup) -> bool {
        wakeup.local.notified().now_or_never().is_some()
    }

    #[test]
    fn jobs_stored_while_workers_are_busy_wake_no_other_but_are_seen_when_a_batch_ends() {
        let wakeup = Wakeup::default();
        // Idle: a stored job wakes a worker.
        wakeup.stored(1);
        assert!(woken(&wakeup));
        // One busy: another is still woken (a stream keeps two).
        let first = wakeup.busy();
        wakeup.stored(1);
        assert!(woken(&wakeup));
        // Two busy: none is woken; the first to end looks again, and only it.
        let second = wakeup.busy();
        wakeup.stored(1);
        assert!(!woken(&wakeup));
        assert!(first.end());
        assert!(!second.end());
        // A batch that fails hands what was stored meanwhile to a woken worker.
        let (a, b) = (wakeup.busy(), wakeup.busy());
        wakeup.stored(1);
        drop(a);
        assert!(woken(&wakeup));
        assert!(!b.end());
    }
}
