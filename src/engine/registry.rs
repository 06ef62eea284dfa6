//! Handlers, registered by Stripe event type or by outbound job kind.
//!
//! An [`EventHandler`] touches only our database: it runs inside the claim transaction (the
//! row lock is its lease), so its effects and the event's new state commit together.
//! A [`JobHandler`] may call Stripe: it runs under a time lease with no transaction open, and
//! commits its effects together with [`super::queue::complete`] when it is done.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use sqlx::{PgConnection, PgPool};

use super::JobError;

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
    pub customer_id: Option<String>,
    pub object_id: Option<String>,
    #[sqlx(try_from = "Vec<u8>")]
    pub payload: Bytes,
}

impl StoredEvent {
    /// Parses `data.object` as `T`; a payload that does not fit its type is permanent.
    pub fn object<T: DeserializeOwned>(&self) -> Result<T, JobError> {
        #[derive(serde::Deserialize)]
        struct Envelope<T> {
            data: Data<T>,
        }
        #[derive(serde::Deserialize)]
        struct Data<T> {
            object: T,
        }
        serde_json::from_slice::<Envelope<T>>(&self.payload)
            .map(|e| e.data.object)
            .map_err(|e| {
                JobError::permanent(anyhow::anyhow!(
                    "{} payload does not parse: {e}",
                    self.event_type
                ))
            })
    }

    /// `data.previous_attributes`, present on `*.updated` events.
    pub fn previous_attributes(&self) -> Option<serde_json::Value> {
        let v: serde_json::Value = serde_json::from_slice(&self.payload).ok()?;
        v.get("data")?.get("previous_attributes").cloned()
    }
}

pub trait EventHandler: Send + Sync + 'static {
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        event: &'a StoredEvent,
    ) -> BoxFuture<'a, Result<Outcome, JobError>>;
}

/// An outbound job as its handler sees it.
#[derive(Debug, Clone)]
pub struct LeasedJob {
    pub id: i64,
    pub kind: String,
    pub job_key: String,
    pub args: serde_json::Value,
    pub attempts: i32,
    /// Fences completion: only the holder of this lease may complete the job.
    pub lease: chrono::DateTime<chrono::Utc>,
}

pub trait JobHandler: Send + Sync + 'static {
    /// Does the work, then commits its effects with `queue::complete` in one transaction.
    fn run<'a>(
        &'a self,
        pool: &'a PgPool,
        job: &'a LeasedJob,
    ) -> BoxFuture<'a, Result<(), JobError>>;

    /// Called once when the job became a dead letter, with the error that killed it, so
    /// what waits on the job (an attach a caller polls) can say it failed. The default does
    /// nothing.
    fn on_dead<'a>(
        &'a self,
        _pool: &'a PgPool,
        _job: &'a LeasedJob,
        _error: &'a str,
    ) -> BoxFuture<'a, Result<(), sqlx::Error>> {
        Box::pin(async { Ok(()) })
    }
}

/// Event types and job kinds to their handlers.
#[derive(Clone, Default)]
pub struct Registry {
    events: HashMap<String, Arc<dyn EventHandler>>,
    jobs: HashMap<String, Arc<dyn JobHandler>>,
}

impl Registry {
    pub fn on_event(mut self, event_type: &str, handler: impl EventHandler) -> Self {
        self.events.insert(event_type.to_owned(), Arc::new(handler));
        self
    }

    pub fn on_job(mut self, kind: &str, handler: impl JobHandler) -> Self {
        self.jobs.insert(kind.to_owned(), Arc::new(handler));
        self
    }

    pub(crate) fn event(&self, event_type: &str) -> Option<&Arc<dyn EventHandler>> {
        self.events.get(event_type)
    }

    pub(crate) fn job(&self, kind: &str) -> Option<&Arc<dyn JobHandler>> {
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
