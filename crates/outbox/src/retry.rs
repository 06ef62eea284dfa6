//! The retry policy.
//!
//! Retryable failures (database errors, an API's 429/5xx, timeouts) wait an exponentially
//! growing, jittered delay computed by the `backoff` crate's `ExponentialBackoff`, until
//! `max_attempts` or `max_age`; then, like permanent failures, they become dead letters.

use std::time::Duration;

use backoff::ExponentialBackoff;
use backoff::backoff::Backoff;

use crate::EngineSettings;
use crate::JobError;

/// What to do with a job after a failure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    RetryIn(Duration),
    Dead,
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    initial: Duration,
    max_interval: Duration,
    max_attempts: i32,
    max_age: Duration,
}

impl RetryPolicy {
    pub fn new(settings: &EngineSettings) -> Self {
        Self {
            initial: Duration::from_millis(settings.retry_initial_ms),
            max_interval: Duration::from_secs(settings.retry_max_secs),
            max_attempts: settings.max_attempts,
            max_age: Duration::from_secs(settings.max_age_secs),
        }
    }

    /// `attempts` counts the attempt that just failed; `age` is the time since enqueueing.
    pub fn verdict(&self, error: &JobError, attempts: i32, age: Duration) -> Verdict {
        match error {
            JobError::Permanent(_) | JobError::Unreadable(_) => Verdict::Dead,
            JobError::Retryable(_) if attempts >= self.max_attempts => Verdict::Dead,
            JobError::Retryable(_) if age >= self.max_age => Verdict::Dead,
            JobError::Retryable(_) => Verdict::RetryIn(self.delay(attempts)),
        }
    }

    /// The jittered delay before attempt `attempts + 1`: initial × 2^(attempts-1) ± 50 %.
    fn delay(&self, attempts: i32) -> Duration {
        let exponent = attempts.saturating_sub(1).clamp(0, 30) as u32;
        let current = self
            .initial
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.max_interval);
        let mut policy = ExponentialBackoff {
            current_interval: current,
            initial_interval: self.initial,
            randomization_factor: 0.5,
            multiplier: 2.0,
            max_interval: self.max_interval,
            max_elapsed_time: None,
            ..ExponentialBackoff::default()
        };
        policy.next_backoff().unwrap_or(self.max_interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            initial: Duration::from_secs(1),
            max_interval: Duration::from_secs(60),
            max_attempts: 5,
            max_age: Duration::from_secs(3600),
        }
    }

    fn retry() -> JobError {
        JobError::retryable(anyhow::anyhow!("db down"))
    }

    #[test]
    fn delays_grow_with_jitter_and_stay_capped() {
        let p = policy();
        for (attempt, base) in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0)] {
            let Verdict::RetryIn(d) = p.verdict(&retry(), attempt, Duration::ZERO) else {
                panic!("attempt {attempt} should retry");
            };
            let secs = d.as_secs_f64();
            assert!(
                (base * 0.5..=base * 1.5).contains(&secs),
                "attempt {attempt}: {secs}"
            );
        }
        assert!(p.delay(40) <= Duration::from_secs(90));
    }

    #[test]
    fn limits_and_permanent_errors_make_dead_letters() {
        let p = policy();
        assert_eq!(p.verdict(&retry(), 5, Duration::ZERO), Verdict::Dead);
        assert_eq!(
            p.verdict(&retry(), 1, Duration::from_secs(3600)),
            Verdict::Dead
        );
        let permanent = JobError::reject("bad input");
        assert_eq!(p.verdict(&permanent, 1, Duration::ZERO), Verdict::Dead);
    }
}
