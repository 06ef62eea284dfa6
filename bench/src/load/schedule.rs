//! Which event is sent when: at a fixed rate (event n is due n/rate seconds after the start,
//! whether or not the server kept up) or flat out, and which of them are measured (those due
//! after the warm-up).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub(super) struct Schedule {
    next: AtomicU64,
    start: Instant,
    warmup: Duration,
    end: Instant,
    /// Fixed-rate: total events to send; flat out: until `end`.
    total: Option<u64>,
    rate: u64,
}

impl Schedule {
    /// From `start`: `warmup`, then `measured`.
    pub(super) fn new(
        start: Instant,
        warmup: Duration,
        measured: Duration,
        total: Option<u64>,
        rate: u64,
    ) -> Self {
        Schedule {
            next: AtomicU64::new(0),
            start,
            warmup,
            end: start + warmup + measured,
            total,
            rate,
        }
    }

    /// The next event's number and when it is due (at a fixed rate, after waiting until
    /// then); `None` once the run has sent all it should.
    pub(super) async fn next(&self) -> Option<(u64, Instant)> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let due = match self.total {
            Some(total) if n >= total => return None,
            Some(_) if self.rate == 0 => Instant::now(),
            Some(_) => {
                let due = self.start + Duration::from_secs_f64(n as f64 / self.rate as f64);
                tokio::time::sleep_until(due.into()).await;
                due
            }
            None if Instant::now() >= self.end => return None,
            None => Instant::now(),
        };
        Some((n, due))
    }

    /// Whether an event due at `due` counts (it is past the warm-up).
    pub(super) fn measured(&self, due: Instant) -> bool {
        due >= self.start + self.warmup
    }
}
