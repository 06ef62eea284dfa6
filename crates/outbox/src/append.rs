//! The group-committing appender of the event log.
//!
//! Each event is handed to [`Appender::append`], which waits for its commit. A few
//! writer tasks take deliveries off one channel, gather what is waiting (for at most
//! `batch_wait_us` once they hold one), and store the whole batch with one multi-row
//! `INSERT ... ON CONFLICT DO NOTHING` into the event log and the job queue in a single
//! transaction. Only after that commit is every caller in the batch answered, so a 2xx always
//! means "stored durably".
//!
//! A batch that Postgres refuses for something other than being unavailable (a constraint,
//! a value it cannot store) is stored again one delivery at a time, so one bad delivery
//! fails alone instead of taking the deliveries committed with it down too (→ 503 for all).
//! Only an unavailable database answers the whole batch with an error.
//!
//! An event appended with a `skip` reason is stored already finished, `skipped` with the
//! reason, and never queued: kept, never applied.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_util::task::TaskTracker;

use crate::errors::is_unavailable;
use crate::{IngestSettings, Wakeup};

/// The job kind of a stored event in the queue (the value predates the outbox crate: rows in
/// existing databases carry it).
pub const EVENT_JOB: &str = "stripe_event";

/// An event to append: the columns of the log.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Unique; a second append of the same id is a [`Stored::Duplicate`].
    pub id: String,
    pub event_type: String,
    /// The source's timestamp (Unix seconds): orders the events of one key.
    pub created: i64,
    /// The subject whose events are applied one at a time, in order; without one, the
    /// object's events are. (Stored in the column `customer_id`, which predates this crate.)
    pub subject_id: Option<String>,
    pub object_id: Option<String>,
    /// Where the event came from, kept for reads and scoped replays.
    pub livemode: bool,
    pub account: Option<String>,
    pub api_version: Option<String>,
    /// Stored already finished as `skipped` with this reason, and never queued.
    pub skip: Option<String>,
    /// How it reached us (`webhook`, `catch_up`), kept with it.
    pub received_via: &'static str,
}

impl NewEvent {
    /// The key that orders this event against others: its subject, else its object.
    pub fn ordering_key(&self) -> Option<&str> {
        self.subject_id.as_deref().or(self.object_id.as_deref())
    }
}

/// What happened to one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    New,
    Duplicate,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    #[error("database unavailable: {0}")]
    Database(Arc<sqlx::Error>),
    #[error("the ingest writer is shutting down")]
    ShuttingDown,
}

struct Delivery {
    event: NewEvent,
    body: Bytes,
    reply: oneshot::Sender<Result<Stored, AppendError>>,
}

/// The appender's handle; cheap to clone.
#[derive(Clone)]
pub struct Appender {
    tx: mpsc::Sender<Delivery>,
    wakeup: Arc<Wakeup>,
}

impl Appender {
    /// Starts the writers on `tracker`. They stop once every handle is dropped and the
    /// channel is drained. `wakeup` hears of each commit that queued new events.
    pub fn start(
        pool: PgPool,
        settings: &IngestSettings,
        wakeup: Arc<Wakeup>,
        tracker: &TaskTracker,
    ) -> Self {
        let (tx, rx) = mpsc::channel(settings.batch_max * settings.writers * 4);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..settings.writers {
            let writer = Writer {
                pool: pool.clone(),
                rx: rx.clone(),
                batch_max: settings.batch_max,
                batch_wait: Duration::from_micros(settings.batch_wait_us),
                wakeup: wakeup.clone(),
            };
            tracker.spawn(writer.run());
        }
        Self { tx, wakeup }
    }

    /// Appends one event with its payload; returns once it is committed (or known already).
    pub async fn append(&self, event: NewEvent, body: Bytes) -> Result<Stored, AppendError> {
        let _waiting = self.wakeup.delivering();
        let (reply, answer) = oneshot::channel();
        let delivery = Delivery { event, body, reply };
        self.tx
            .send(delivery)
            .await
            .map_err(|_| AppendError::ShuttingDown)?;
        answer.await.map_err(|_| AppendError::ShuttingDown)?
    }
}

struct Writer {
    pool: PgPool,
    rx: Arc<Mutex<mpsc::Receiver<Delivery>>>,
    batch_max: usize,
    batch_wait: Duration,
    wakeup: Arc<Wakeup>,
}

impl Writer {
    async fn run(self) {
        let mut batch = Vec::with_capacity(self.batch_max);
        while self.gather(&mut batch).await {
            let started = Instant::now();
            match insert_batch(&self.pool, &batch).await {
                Err(error) if batch.len() > 1 && !is_unavailable(&error) => {
                    tracing::warn!(
                        batch = batch.len(),
                        %error,
                        "ingest batch refused; storing its deliveries one at a time"
                    );
                    for delivery in batch.drain(..) {
                        let mut one = vec![delivery];
                        let result = insert_batch(&self.pool, &one).await;
                        self.finish(&mut one, result, started);
                    }
                }
                result => self.finish(&mut batch, result, started),
            }
        }
    }

    /// Logs the outcome, wakes workers for what was queued, answers every caller.
    fn finish(
        &self,
        batch: &mut Vec<Delivery>,
        result: Result<Vec<(String, bool)>, sqlx::Error>,
        started: Instant,
    ) {
        match &result {
            Ok(new) => {
                let queued = new.iter().filter(|(_, queued)| *queued).count();
                tracing::debug!(
                    batch = batch.len(),
                    new = new.len(),
                    micros = started.elapsed().as_micros() as u64,
                    "ingest batch committed"
                );
                if queued > 0 {
                    self.wakeup.stored(queued);
                }
            }
            Err(error) => tracing::warn!(batch = batch.len(), %error, "ingest batch failed"),
        }
        answer(batch, result);
    }

    /// Fills `batch`; false once the channel is closed and drained.
    async fn gather(&self, batch: &mut Vec<Delivery>) -> bool {
        let mut rx = self.rx.lock().await;
        let Some(first) = rx.recv().await else {
            return false;
        };
        batch.push(first);
        let deadline = tokio::time::Instant::now() + self.batch_wait;
        while batch.len() < self.batch_max {
            match rx.try_recv() {
                Ok(d) => batch.push(d),
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) if self.batch_wait.is_zero() => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(d)) => batch.push(d),
                        Ok(None) | Err(_) => break,
                    }
                }
            }
        }
        true
    }
}

fn answer(batch: &mut Vec<Delivery>, result: Result<Vec<(String, bool)>, sqlx::Error>) {
    match result {
        Ok(mut new_ids) => {
            for d in batch.drain(..) {
                // The first delivery of a new id stored it; any other is a duplicate.
                let stored = match new_ids.iter().position(|(id, _)| *id == d.event.id) {
                    Some(i) => {
                        new_ids.swap_remove(i);
                        Stored::New
                    }
                    None => Stored::Duplicate,
                };
                let _ = d.reply.send(Ok(stored));
            }
        }
        Err(error) => {
            let error = AppendError::Database(Arc::new(error));
            for d in batch.drain(..) {
                let _ = d.reply.send(Err(error.clone()));
            }
        }
    }
}

/// One statement, one commit: new events into the log and, unless skipped, the queue.
/// Returns the new ids, each with whether it was queued.
async fn insert_batch(
    pool: &PgPool,
    batch: &[Delivery],
) -> Result<Vec<(String, bool)>, sqlx::Error> {
    let n = batch.len();
    let mut ids = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    let mut created = Vec::with_capacity(n);
    let mut livemode = Vec::with_capacity(n);
    let mut api_versions = Vec::with_capacity(n);
    let mut accounts = Vec::with_capacity(n);
    let mut object_ids = Vec::with_capacity(n);
    let mut subject_ids = Vec::with_capacity(n);
    let mut ordering_keys = Vec::with_capacity(n);
    let mut payloads: Vec<&[u8]> = Vec::with_capacity(n);
    let mut skip_reasons = Vec::with_capacity(n);
    let mut received_via = Vec::with_capacity(n);
    for d in batch {
        let e = &d.event;
        if ids.contains(&e.id.as_str()) {
            continue; // the same event twice in one batch: store it once
        }
        ids.push(e.id.as_str());
        types.push(e.event_type.as_str());
        created.push(e.created);
        livemode.push(e.livemode);
        api_versions.push(e.api_version.as_deref());
        accounts.push(e.account.as_deref());
        object_ids.push(e.object_id.as_deref());
        subject_ids.push(e.subject_id.as_deref());
        ordering_keys.push(e.ordering_key());
        payloads.push(&d.body);
        skip_reasons.push(e.skip.as_deref());
        received_via.push(e.received_via);
    }
    sqlx::query_as(
        r#"
        WITH input AS (
            SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bool[], $5::text[],
                                 $6::text[], $7::text[], $8::text[], $9::bytea[], $10::text[],
                                 $12::text[], $13::text[])
                AS t(id, type, created, livemode, api_version, account, object_id, customer_id,
                     payload, ordering_key, skip_reason, received_via)
        ), stored AS (
            INSERT INTO events (id, type, created, livemode, api_version, account, object_id,
                                customer_id, payload, state, last_error, finished_at,
                                received_via)
            SELECT id, type, created, livemode, api_version, account, object_id, customer_id,
                   payload,
                   CASE WHEN skip_reason IS NULL THEN 'received' ELSE 'skipped' END,
                   skip_reason,
                   CASE WHEN skip_reason IS NOT NULL THEN now() END,
                   received_via
            FROM input
            ON CONFLICT (id) DO NOTHING
            RETURNING id
        ), queued AS (
            INSERT INTO jobs (kind, job_key, ordering_key, sort_key)
            SELECT $11, input.id, input.ordering_key, input.created
            FROM stored JOIN input USING (id)
            WHERE input.skip_reason IS NULL
            ON CONFLICT (job_key) DO NOTHING
            RETURNING job_key
        )
        SELECT stored.id, queued.job_key IS NOT NULL
        FROM stored LEFT JOIN queued ON queued.job_key = stored.id
        "#,
    )
    .bind(&ids)
    .bind(&types)
    .bind(&created)
    .bind(&livemode)
    .bind(&api_versions)
    .bind(&accounts)
    .bind(&object_ids)
    .bind(&subject_ids)
    .bind(&payloads)
    .bind(&ordering_keys)
    .bind(EVENT_JOB)
    .bind(&skip_reasons)
    .bind(&received_via)
    .fetch_all(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_ordered_by_its_subject_else_its_object() {
        let mut event = NewEvent {
            id: "evt_1".into(),
            event_type: "invoice.paid".into(),
            created: 1,
            subject_id: Some("cus_1".into()),
            object_id: Some("in_1".into()),
            livemode: false,
            account: None,
            api_version: None,
            skip: None,
            received_via: "webhook",
        };
        assert_eq!(event.ordering_key(), Some("cus_1"));
        event.subject_id = None;
        assert_eq!(event.ordering_key(), Some("in_1"));
    }
}
