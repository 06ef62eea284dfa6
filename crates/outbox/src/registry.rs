//! Handlers by event type, typed jobs by kind.
//!
//! An [`EventHandler`] touches only the database: it runs inside the claim transaction (the
//! row lock is its lease), so its effects and the event's new state commit together. A
//! [`Job`](crate::Job) may call the outside world: it runs under a time lease with no
//! transaction open (see [`crate::job`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use sqlx::{PgConnection, PgPool};

use crate::JobError;
use crate::job::{Done, Job, Lease, LeasedJob};

/// What an event handler decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// Nothing to do, with the reason (kept as the event's `last_error` for ops).
    Skipped(String),
}

/// A stored event as a handler sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredEvent {
    pub id: String,
    #[sqlx(rename = "type")]
    pub event_type: String,
    pub created: i64,
    /// The subject whose events are applied in order (see [`crate::NewEvent`]).
    #[sqlx(rename = "customer_id")]
    pub subject_id: Option<String>,
    pub object_id: Option<String>,
    #[sqlx(try_from = "Vec<u8>")]
    pub payload: Bytes,
}

impl StoredEvent {
    /// Parses the payload as `T`; a payload that does not fit its type is
    /// [`JobError::Unreadable`] (permanent).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, JobError> {
        serde_json::from_slice(&self.payload).map_err(|e| {
            JobError::Unreadable(anyhow::anyhow!(
                "{} payload does not parse: {e}",
                self.event_type
            ))
        })
    }
}

/// Applies events of the types it is registered for, inside the claim transaction.
pub trait EventHandler: Send + Sync + 'static {
    fn handle(
        &self,
        conn: &mut PgConnection,
        event: &StoredEvent,
    ) -> impl Future<Output = Result<Outcome, JobError>> + Send;
}

/// An event handler behind a pointer.
pub(crate) trait DynEventHandler: Send + Sync {
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a StoredEvent,
    ) -> BoxFuture<'a, Result<Outcome, JobError>>;
}

impl<H: EventHandler> DynEventHandler for H {
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a StoredEvent,
    ) -> BoxFuture<'a, Result<Outcome, JobError>> {
        Box::pin(EventHandler::handle(self, conn, event))
    }
}

/// A job kind behind a pointer: reads the typed arguments and runs them with the context.
pub(crate) trait DynJob: Send + Sync {
    fn run<'a>(
        &'a self,
        pool: &'a PgPool,
        job: &'a LeasedJob,
    ) -> BoxFuture<'a, Result<Done, JobError>>;

    fn on_dead<'a>(
        &'a self,
        pool: &'a PgPool,
        job: &'a LeasedJob,
        error: &'a str,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>>;
}

struct Typed<J: Job> {
    context: Arc<J::Context>,
}

impl<J: Job> Typed<J> {
    /// The job's arguments; ones that do not parse fail the job permanently, never default.
    fn args(job: &LeasedJob) -> Result<J, JobError> {
        serde_json::from_value(job.args.clone()).map_err(|e| {
            JobError::permanent(anyhow::anyhow!(
                "arguments of {} job {} do not parse: {e}",
                J::KIND,
                job.job_key
            ))
        })
    }
}

impl<J: Job> DynJob for Typed<J> {
    fn run<'a>(
        &'a self,
        pool: &'a PgPool,
        job: &'a LeasedJob,
    ) -> BoxFuture<'a, Result<Done, JobError>> {
        Box::pin(async move {
            let args = Self::args(job)?;
            args.run(&self.context, Lease::new(pool, job)).await
        })
    }

    fn on_dead<'a>(
        &'a self,
        pool: &'a PgPool,
        job: &'a LeasedJob,
        error: &'a str,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async move {
            match Self::args(job) {
                Ok(args) => args.on_dead(&self.context, pool, error).await,
                Err(_) => Ok(()), // nothing to tell about arguments that never parsed
            }
        })
    }
}

/// Event types and job kinds to their handlers.
#[derive(Clone, Default)]
pub struct Registry {
    events: HashMap<String, Arc<dyn DynEventHandler>>,
    jobs: HashMap<&'static str, Arc<dyn DynJob>>,
}

impl Registry {
    pub fn on_event(mut self, event_type: &str, handler: impl EventHandler) -> Self {
        self.events.insert(event_type.to_owned(), Arc::new(handler));
        self
    }

    /// Runs jobs of `J::KIND` with `context`.
    pub fn on_job<J: Job>(mut self, context: Arc<J::Context>) -> Self {
        self.jobs.insert(J::KIND, Arc::new(Typed::<J> { context }));
        self
    }

    pub(crate) fn event(&self, event_type: &str) -> Option<&Arc<dyn DynEventHandler>> {
        self.events.get(event_type)
    }

    pub(crate) fn job(&self, kind: &str) -> Option<&Arc<dyn DynJob>> {
        self.jobs.get(kind)
    }

    /// Whether a handler is registered for the job kind.
    pub fn handles_job(&self, kind: &str) -> bool {
        self.jobs.contains_key(kind)
    }

    pub fn event_types(&self) -> impl Iterator<Item = &str> {
        self.events.keys().map(String::as_str)
    }
}
