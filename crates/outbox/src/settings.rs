//! The outbox's settings, deserialized by the application's configuration (its `ingest` and
//! `engine` sections).

use serde::Deserialize;

/// The group-committing appender ([`crate::Appender`]).
#[derive(Clone, Debug, Deserialize)]
pub struct IngestSettings {
    /// Concurrent group-commit writers.
    pub writers: usize,
    /// Most deliveries committed in one transaction.
    pub batch_max: usize,
    /// How long a writer waits to fill a batch once it holds one delivery.
    pub batch_wait_us: u64,
}

/// The worker loops, retries and retention ([`crate::Engine`]).
#[derive(Clone, Debug, Deserialize)]
pub struct EngineSettings {
    pub workers: usize,
    pub batch_size: i64,
    pub max_attempts: i32,
    pub max_age_secs: u64,
    pub retry_initial_ms: u64,
    pub retry_max_secs: u64,
    pub lease_secs: u64,
    pub poll_interval_ms: u64,
    pub notify_interval_ms: u64,
    pub retention_days: u32,
    pub prune_interval_secs: u64,
    /// While this many deliveries wait for their ingest commit (and applying lags less than
    /// 30 s), only the first worker claims: a burst is acknowledged first and applied
    /// right after. 0: never yield.
    pub yield_to_ingest_at: usize,
    /// A batch's independent events (no two of one key) of one handler are applied with one
    /// [`crate::EventHandler::handle_many`] call; false: one `handle` call each (the same
    /// rules, a statement per row; kept to compare the two and as a way back).
    #[serde(default = "applies_together")]
    pub apply_together: bool,
}

fn applies_together() -> bool {
    true
}
