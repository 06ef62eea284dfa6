//! # outbox
//!
//! A Postgres outbox: events appended durably and group-committed, a job queue with per-key
//! order, leases and retries, and the worker loops that apply events and run jobs. It knows
//! nothing of what the events mean: the application registers handlers.
//!
//! ```text
//! append ──▶ events (log) + jobs (queue) ──claim (SKIP LOCKED, heads of keys)──▶ worker
//!                                  ▲                                          │
//! enqueue(Job) in a tx ────────────┘        EventHandler in the claim tx ◀────┤
//!   (a trigger wakes the workers)           Job::run under a lease ◀──────────┘
//!                                             └─ Lease::complete in its own tx
//! ```
//!
//! - [`append`]: the group-committing appender ([`Appender`], [`NewEvent`]).
//! - [`registry`]: [`EventHandler`]s by event type (one handler may take several types, and
//!   a wave of independent events at once: `handle_many`) and typed [`Job`]s by kind.
//! - [`job`]: the [`Job`] trait, [`enqueue`], [`Lease`] (the one way to finish).
//! - [`runner`]: the [`Engine`]: worker loops, LISTEN, the pruner; `run_until_idle` for tests.
//! - [`worker`] (private): one step: claim a batch, apply its events in waves (the n-th event
//!   of each key; a wave's events are independent), run leased jobs.
//! - `shared` (private): what the runner's loops and a worker step share.
//! - [`queue`]: every statement on `jobs` and `events` the runner makes: `queue/claim.rs`
//!   (heads, followers, their events), `queue/settle.rs` (finish, fail, lease, complete),
//!   and enqueue, retry, replay, prune.
//! - [`log`]: reads of the log and the queue's counts.
//! - [`errors`], [`retry`]: failure classes (of handlers and of Postgres) and the backoff.
//! - [`wakeup`], [`heartbeat`](runner): waking workers; whether they come round.
//! - [`metrics`]: what the runner counts; [`settings`]: its configuration.
//!
//! The tables are created by the application's migrations (`events`, `jobs`, and the trigger
//! `jobs_wake_workers`); this crate holds every statement on them.

pub mod append;
pub mod errors;
mod heartbeat;
pub mod job;
pub mod log;
pub mod metrics;
pub mod queue;
pub mod registry;
pub mod retry;
pub mod runner;
pub mod settings;
mod shared;
pub mod wakeup;
mod worker;

pub use append::{AppendError, Appender, EVENT_JOB, NewEvent, Stored};
pub use errors::{JobError, is_data_error, is_unavailable};
pub use heartbeat::WorkerStalled;
pub use job::{Done, Job, Lease, LeasedJob, enqueue};
pub use registry::{EventHandler, Outcome, Registry, StoredEvent};
pub use retry::{RetryPolicy, Verdict};
pub use runner::Engine;
pub use settings::{EngineSettings, IngestSettings};
pub use wakeup::Wakeup;
