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
    /// The fewest events of a wave given to [`handle_many`](Self::handle_many) at once.
    const TOGETHER_FROM: usize = 1;

    fn handle(
        &self,
        conn: &mut PgConnection,
        event: &StoredEvent,
    ) -> impl Future<Output = Result<Outcome, JobError>> + Send;

    /// Applies several events together, as if one after the other: no two share an ordering
    /// key (they are independent), and they are given in the order a one-by-one apply would
    /// take. One answer per event, in their order: an event's `Err` may only be
    /// [`JobError::Unreadable`] (raised before anything was written for it); any other
    /// failure is the outer `Err`, and the worker rolls the batch back and applies its
    /// events one by one ([`handle`](Self::handle), a savepoint each).
    ///
    /// The default calls `handle` for each; a handler overrides it to apply a batch with
    /// set-based statements (a statement for all its rows instead of one per row). The worker
    /// calls it for a group of at least [`TOGETHER_FROM`](Self::TOGETHER_FROM) events; a
    /// smaller group gets a `handle` call each.
    fn handle_many(
        &self,
        conn: &mut PgConnection,
        events: &[&StoredEvent],
    ) -> impl Future<Output = Result<Vec<Result<Outcome, JobError>>, JobError>> + Send
    where
        Self: Sized,
    {
        handle_each(self, conn, events)
    }
}

/// [`EventHandler::handle_many`] as one `handle` call after another: its default, what the
/// worker does instead of it when `engine.apply_together` is off, and what a handler may fall
/// back to.
pub async fn handle_each(
    handler: &dyn DynEventHandler,
    conn: &mut PgConnection,
    events: &[&StoredEvent],
) -> ManyOutcomes {
    let mut answers = Vec::with_capacity(events.len());
    for event in events {
        match handler.handle(conn, event).await {
            Err(JobError::Unreadable(e)) => answers.push(Err(JobError::Unreadable(e))),
            Err(e) => return Err(e),
            Ok(outcome) => answers.push(Ok(outcome)),
        }
    }
    Ok(answers)
}

/// Completes a [`EventHandler::handle_many`] that settled some of `events` itself
/// (`settled`, aligned with them): the others one `handle` call each, in their order, after
/// those; the answers merged in the events' order.
pub async fn handle_rest(
    handler: &dyn DynEventHandler,
    conn: &mut PgConnection,
    events: &[&StoredEvent],
    settled: Vec<Option<Outcome>>,
) -> ManyOutcomes {
    let rest: Vec<&StoredEvent> = events
        .iter()
        .zip(&settled)
        .filter(|(_, settled)| settled.is_none())
        .map(|(event, _)| *event)
        .collect();
    let mut rest = handle_each(handler, conn, &rest).await?.into_iter();
    Ok(settled
        .into_iter()
        .map(|settled| match settled {
            Some(outcome) => Ok(outcome),
            None => rest.next().expect("one answer per event handled alone"),
        })
        .collect())
}

/// What [`EventHandler::handle_many`] answers: one result per event, or a failure of the
/// whole call.
pub(crate) type ManyOutcomes = Result<Vec<Result<Outcome, JobError>>, JobError>;

/// An event handler behind a pointer (every [`EventHandler`] is one).
pub trait DynEventHandler: Send + Sync {
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a StoredEvent,
    ) -> BoxFuture<'a, Result<Outcome, JobError>>;

    fn handle_many<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        events: &'a [&'a StoredEvent],
    ) -> BoxFuture<'a, ManyOutcomes>;

    /// [`EventHandler::TOGETHER_FROM`].
    fn together_from(&self) -> usize;
}

impl<H: EventHandler> DynEventHandler for H {
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a StoredEvent,
    ) -> BoxFuture<'a, Result<Outcome, JobError>> {
        Box::pin(EventHandler::handle(self, conn, event))
    }

    fn handle_many<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        events: &'a [&'a StoredEvent],
    ) -> BoxFuture<'a, ManyOutcomes> {
        Box::pin(EventHandler::handle_many(self, conn, events))
    }

    fn together_from(&self) -> usize {
        H::TOGETHER_FROM
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
    pub fn on_event(self, event_type: &str, handler: impl EventHandler) -> Self {
        self.on_events(&[event_type], handler)
    }

    /// One handler for several event types: a batch's events of any of them are given to
    /// its [`EventHandler::handle_many`] together.
    pub fn on_events(mut self, event_types: &[&str], handler: impl EventHandler) -> Self {
        let handler: Arc<dyn DynEventHandler> = Arc::new(handler);
        for event_type in event_types {
            self.events
                .insert((*event_type).to_owned(), handler.clone());
        }
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
