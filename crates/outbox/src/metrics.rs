//! What the runner counts, through the `metrics` facade: the application installs a
//! recorder and describes these names (with [`describe`]).

use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};

use crate::EVENT_JOB;

pub const EVENT_PROCESSING_SECONDS: &str = "reconciler_event_processing_seconds";
pub const EVENTS: &str = "reconciler_events_total";
pub const JOB_RETRIES: &str = "reconciler_job_retries_total";
pub const DEAD_LETTERS: &str = "reconciler_dead_letters_total";
pub const APPLY_LAG_SECONDS: &str = "reconciler_apply_lag_seconds";

/// Describes the runner's metrics to the installed recorder.
pub fn describe() {
    describe_histogram!(
        EVENT_PROCESSING_SECONDS,
        Unit::Seconds,
        "Time to process one event attempt, by event type."
    );
    describe_counter!(
        EVENTS,
        "Event processing attempts by type and outcome (applied, skipped, retry, dead)."
    );
    describe_counter!(
        JOB_RETRIES,
        "Failed attempts scheduled for a retry, by job kind."
    );
    describe_counter!(DEAD_LETTERS, "Jobs moved to the dead letters, by job kind.");
    describe_histogram!(
        APPLY_LAG_SECONDS,
        Unit::Seconds,
        "Time from queueing an event (its receipt) to the commit that applied or skipped it."
    );
}

/// What one attempt at an event came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    Applied,
    Skipped,
    Retry,
    Dead,
}

impl EventOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Skipped => "skipped",
            Self::Retry => "retry",
            Self::Dead => "dead",
        }
    }
}

/// One committed attempt at an event: its outcome, its duration, and the retry or dead
/// letter it made of the event's job.
pub(crate) fn event_processed(event_type: &str, outcome: EventOutcome, elapsed: Duration) {
    let event_type = event_type.to_owned();
    histogram!(EVENT_PROCESSING_SECONDS, "type" => event_type.clone()).record(elapsed);
    counter!(EVENTS, "type" => event_type, "outcome" => outcome.as_str()).increment(1);
    match outcome {
        EventOutcome::Retry => job_retried(EVENT_JOB),
        EventOutcome::Dead => dead_letter(EVENT_JOB),
        EventOutcome::Applied | EventOutcome::Skipped => {}
    }
}

/// The apply lag of an event that reached its final state (applied or skipped) in a
/// committed claim: from its job's `enqueued_at` to now.
pub(crate) fn event_finished(outcome: EventOutcome, enqueued_at: chrono::DateTime<chrono::Utc>) {
    if matches!(outcome, EventOutcome::Applied | EventOutcome::Skipped) {
        let lag = (chrono::Utc::now() - enqueued_at)
            .to_std()
            .unwrap_or_default();
        histogram!(APPLY_LAG_SECONDS).record(lag);
    }
}

pub(crate) fn job_retried(kind: &str) {
    counter!(JOB_RETRIES, "kind" => kind.to_owned()).increment(1);
}

pub(crate) fn dead_letter(kind: &str) {
    counter!(DEAD_LETTERS, "kind" => kind.to_owned()).increment(1);
}
