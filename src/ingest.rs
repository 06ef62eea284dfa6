//! Stripe's verified deliveries into the outbox's event log.
//!
//! Each delivery is appended through [`outbox::Appender`], which group-commits and answers
//! only once the event is durable, so a 2xx always means "stored". Events outside the
//! daemon's [`Scope`] (the other mode, another account) are appended already finished,
//! `skipped` with the reason, and never queued: nothing is lost, nothing from test mode
//! touches live customers.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use outbox::{Appender, NewEvent, Wakeup};
use sqlx::PgPool;
use tokio_util::task::TaskTracker;

use crate::config::IngestSettings;
use crate::stripe::event::{Envelope, Scope};

pub use outbox::{AppendError as IngestError, Stored};

/// Handle used by the HTTP layer; cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    appender: Appender,
    scope: Arc<Scope>,
}

impl Ingest {
    /// Starts the outbox's writers on `tracker`; events outside `scope` are stored as
    /// skipped.
    pub fn start(
        pool: PgPool,
        settings: &IngestSettings,
        scope: Scope,
        wakeup: Arc<Wakeup>,
        tracker: &TaskTracker,
    ) -> Self {
        Self {
            appender: Appender::start(pool, settings, wakeup, tracker),
            scope: Arc::new(scope),
        }
    }

    /// Stores one verified event; returns once it is committed (or known already).
    pub async fn store(&self, envelope: Envelope, body: Bytes) -> Result<Stored, IngestError> {
        self.store_via(envelope, body, "webhook").await
    }

    /// [`Ingest::store`] for an event that reached us another way (`catch_up`).
    pub async fn store_via(
        &self,
        envelope: Envelope,
        body: Bytes,
        via: &'static str,
    ) -> Result<Stored, IngestError> {
        let skip = envelope.out_of_scope(&self.scope);
        if let Some(reason) = &skip {
            tracing::info!(event_id = %envelope.id, %reason, "event stored as skipped");
        }
        crate::metrics::event_api_version(envelope.api_version.as_deref());
        self.appender
            .append(new_event(envelope, skip, via), body)
            .await
    }
}

/// The log's columns for a Stripe event: its customer orders it (else its object).
fn new_event(e: Envelope, skip: Option<String>, received_via: &'static str) -> NewEvent {
    NewEvent {
        id: e.id,
        event_type: e.event_type,
        created: e.created,
        subject_id: e.customer_id,
        object_id: e.object_id,
        livemode: e.livemode,
        account: e.account,
        api_version: e.api_version,
        skip,
        received_via,
    }
}

/// Queues stored events received since `since` again, through the same handlers: only
/// events of the daemon's mode and account (see [`outbox::queue::replay`]).
pub async fn replay(
    pool: &PgPool,
    since: DateTime<Utc>,
    event_type: Option<&str>,
    scope: &Scope,
) -> Result<u64, sqlx::Error> {
    let replay = outbox::queue::Replay {
        since,
        event_type,
        livemode: scope.livemode,
        account: scope.account.as_deref(),
    };
    outbox::queue::replay(pool, &replay).await
}
