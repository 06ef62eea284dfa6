//! Liveness of the worker loops, for the systemd watchdog.
//!
//! Each worker loop beats once per turn: after every batch, every empty poll, every wake-up
//! and every error pause. A healthy worker is therefore never silent for longer than its
//! longest pause plus one batch, and a batch's outbound jobs must finish within their lease
//! (past it, other workers take them over). A worker silent for longer than that is stuck.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// When each worker last came round its loop.
pub(crate) struct Heartbeats {
    epoch: Instant,
    /// Milliseconds since `epoch`, one slot per worker.
    last: Box<[AtomicU64]>,
}

/// A worker that has not come round its loop in time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("worker {worker} has been silent for {}s (limit {}s)", silent.as_secs(), limit.as_secs())]
pub struct WorkerStalled {
    pub worker: usize,
    pub silent: Duration,
    pub limit: Duration,
}

impl Heartbeats {
    pub(crate) fn new(workers: usize) -> Self {
        Self {
            epoch: Instant::now(),
            last: (0..workers).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Worker `n` is alive now.
    pub(crate) fn beat(&self, n: usize) {
        self.beat_at(n, Instant::now());
    }

    fn beat_at(&self, n: usize, now: Instant) {
        let millis = now.saturating_duration_since(self.epoch).as_millis() as u64;
        self.last[n].store(millis, Ordering::Relaxed);
    }

    /// The most silent worker, if it has been silent for longer than `limit`. With no
    /// workers there is nothing to check.
    pub(crate) fn check(&self, limit: Duration, now: Instant) -> Result<(), WorkerStalled> {
        let since_epoch = now.saturating_duration_since(self.epoch);
        let stalest = self
            .last
            .iter()
            .enumerate()
            .map(|(worker, last)| {
                let last = Duration::from_millis(last.load(Ordering::Relaxed));
                (worker, since_epoch.saturating_sub(last))
            })
            .max_by_key(|(_, silent)| *silent);
        match stalest {
            Some((worker, silent)) if silent > limit => Err(WorkerStalled {
                worker,
                silent,
                limit,
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(10);

    #[test]
    fn the_most_silent_worker_past_the_limit_is_named() {
        let beats = Heartbeats::new(3);
        let t0 = beats.epoch;
        for n in 0..3 {
            beats.beat_at(n, t0 + Duration::from_secs(5));
        }
        assert_eq!(beats.check(LIMIT, t0 + Duration::from_secs(15)), Ok(()));
        beats.beat_at(0, t0 + Duration::from_secs(20));
        beats.beat_at(2, t0 + Duration::from_secs(20));
        let stalled = beats
            .check(LIMIT, t0 + Duration::from_secs(21))
            .unwrap_err();
        assert_eq!(stalled.worker, 1);
        assert_eq!(stalled.silent, Duration::from_secs(16));
        assert!(stalled.to_string().contains("worker 1"), "{stalled}");
    }

    #[test]
    fn no_workers_is_never_stalled() {
        let beats = Heartbeats::new(0);
        let later = beats.epoch + Duration::from_secs(3600);
        assert_eq!(beats.check(LIMIT, later), Ok(()));
    }
}
