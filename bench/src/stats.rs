//! Latency samples and their percentiles.

use serde_json::{Value, json};

/// Percentiles of samples in microseconds, reported in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Summary {
    /// `None` for no samples. Nearest-rank percentiles.
    pub fn of_micros(mut samples: Vec<u32>) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            f64::from(samples[rank - 1]) / 1000.0
        };
        Some(Self {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: at(1.0),
        })
    }

    pub fn to_json(self) -> Value {
        let round = |v: f64| (v * 100.0).round() / 100.0;
        json!({ "p50": round(self.p50), "p90": round(self.p90), "p99": round(self.p99), "max": round(self.max) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s = Summary::of_micros((1..=100).map(|ms| ms * 1000).collect()).unwrap();
        assert_eq!((s.p50, s.p90, s.p99, s.max), (50.0, 90.0, 99.0, 100.0));
        let one = Summary::of_micros(vec![2500]).unwrap();
        assert_eq!((one.p50, one.max), (2.5, 2.5));
        assert!(Summary::of_micros(vec![]).is_none());
    }
}
