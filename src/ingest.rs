//! Group-committing writer of incoming events.
//!
//! Each verified delivery is handed to [`Ingest::store`], which waits for its commit. A few
//! writer tasks take deliveries off one channel, gather what is waiting (for at most
//! `batch_wait_us` once they hold one), and store the whole batch with one multi-row
//! `INSERT ... ON CONFLICT DO NOTHING` into the event log and the job queue in a single
//! transaction. Only after that commit is every caller in the batch answered, so a 2xx always
//! means "stored durably"; a failed commit answers every caller with an error (→ 503).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_util::task::TaskTracker;

use crate::config::IngestSettings;
use crate::engine::Wakeup;
use crate::stripe::event::Envelope;

/// The job kind of a Stripe event in the queue.
pub const EVENT_JOB: &str = "stripe_event";

/// What happened to one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    New,
    Duplicate,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestError {
    #[error("database unavailable: {0}")]
    Database(Arc<sqlx::Error>),
    #[error("the ingest writer is shutting down")]
    ShuttingDown,
}

struct Delivery {
    envelope: Envelope,
    body: Bytes,
    reply: oneshot::Sender<Result<Stored, IngestError>>,
}

/// Handle used by the HTTP layer; cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    tx: mpsc::Sender<Delivery>,
    wakeup: Arc<Wakeup>,
}

impl Ingest {
    /// Starts the writers on `tracker`. They stop once every handle is dropped and the
    /// channel is drained. `wakeup` hears of each commit that stored new events.
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

    /// Stores one verified event; returns once it is committed (or known already).
    pub async fn store(&self, envelope: Envelope, body: Bytes) -> Result<Stored, IngestError> {
        let _waiting = self.wakeup.delivering();
        let (reply, answer) = oneshot::channel();
        let delivery = Delivery {
            envelope,
            body,
            reply,
        };
        self.tx
            .send(delivery)
            .await
            .map_err(|_| IngestError::ShuttingDown)?;
        answer.await.map_err(|_| IngestError::ShuttingDown)?
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
            let result = insert_batch(&self.pool, &batch).await;
            match &result {
                Ok(new_ids) => {
                    tracing::debug!(
                        batch = batch.len(),
                        new = new_ids.len(),
                        micros = started.elapsed().as_micros() as u64,
                        "ingest batch committed"
                    );
                    if !new_ids.is_empty() {
                        self.wakeup.stored(new_ids.len());
                    }
                }
                Err(error) => tracing::warn!(batch = batch.len(), %error, "ingest batch failed"),
            }
            answer(&mut batch, result);
        }
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

fn answer(batch: &mut Vec<Delivery>, result: Result<Vec<String>, sqlx::Error>) {
    match result {
        Ok(mut new_ids) => {
            for d in batch.drain(..) {
                // The first delivery of a new id stored it; any other is a duplicate.
                let stored = match new_ids.iter().position(|id| *id == d.envelope.id) {
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
            let error = IngestError::Database(Arc::new(error));
            for d in batch.drain(..) {
                let _ = d.reply.send(Err(error.clone()));
            }
        }
    }
}

/// One statement, one commit: new events into the log and the queue; returns the new ids.
async fn insert_batch(pool: &PgPool, batch: &[Delivery]) -> Result<Vec<String>, sqlx::Error> {
    let n = batch.len();
    let mut ids = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    let mut created = Vec::with_capacity(n);
    let mut livemode = Vec::with_capacity(n);
    let mut api_versions = Vec::with_capacity(n);
    let mut accounts = Vec::with_capacity(n);
    let mut object_ids = Vec::with_capacity(n);
    let mut customer_ids = Vec::with_capacity(n);
    let mut ordering_keys = Vec::with_capacity(n);
    let mut payloads: Vec<&[u8]> = Vec::with_capacity(n);
    for d in batch {
        let e = &d.envelope;
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
        customer_ids.push(e.customer_id.as_deref());
        ordering_keys.push(e.ordering_key());
        payloads.push(&d.body);
    }
    sqlx::query_scalar(
        r#"
        WITH input AS (
            SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bool[], $5::text[],
                                 $6::text[], $7::text[], $8::text[], $9::bytea[], $10::text[])
                AS t(id, type, created, livemode, api_version, account, object_id, customer_id,
                     payload, ordering_key)
        ), stored AS (
            INSERT INTO events (id, type, created, livemode, api_version, account, object_id,
                                customer_id, payload)
            SELECT id, type, created, livemode, api_version, account, object_id, customer_id,
                   payload
            FROM input
            ON CONFLICT (id) DO NOTHING
            RETURNING id
        )
        INSERT INTO jobs (kind, job_key, ordering_key, sort_key)
        SELECT $11, input.id, input.ordering_key, input.created
        FROM stored JOIN input USING (id)
        ON CONFLICT (job_key) DO NOTHING
        RETURNING job_key
        "#,
    )
    .bind(&ids)
    .bind(&types)
    .bind(&created)
    .bind(&livemode)
    .bind(&api_versions)
    .bind(&accounts)
    .bind(&object_ids)
    .bind(&customer_ids)
    .bind(&payloads)
    .bind(&ordering_keys)
    .bind(EVENT_JOB)
    .fetch_all(pool)
    .await
}
