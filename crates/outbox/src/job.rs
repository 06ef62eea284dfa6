//! Typed jobs: work that calls the outside world, enqueued in a transaction and run later
//! under a lease.
//!
//! A job is a serde value (its arguments) with a `KIND`, a key (enqueued once per key) and
//! an ordering key (jobs sharing one run one at a time, in order). [`enqueue`] stores it;
//! a trigger on the queue wakes the workers of every instance when the transaction commits.
//! A job finishes one way only: [`Lease::complete`] deletes it in the transaction that
//! commits its effects, and fails (rolling them back) if the lease was lost to another
//! worker meanwhile. The [`Done`] it returns is what [`Job::run`] must return.

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::{JobError, queue};

/// A kind of outbound job; the value is its arguments.
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Stored in the queue's `kind` column; never change it for a kind with jobs queued.
    const KIND: &'static str;
    /// What running a job needs (clients, configuration), shared by all jobs of the kind.
    type Context: Send + Sync + 'static;

    /// A job is enqueued once per key (a second enqueue of the same key does nothing).
    fn key(&self) -> String;

    /// Jobs sharing an ordering key run one at a time, in enqueue order.
    fn ordering_key(&self) -> Option<String>;

    /// Does the work and finishes with [`Lease::complete`].
    fn run(
        &self,
        context: &Self::Context,
        lease: Lease<'_>,
    ) -> impl Future<Output = Result<Done, JobError>> + Send;

    /// Called once when the job became a dead letter, with the error that killed it, so
    /// what waits on it can say it failed. The default does nothing.
    fn on_dead(
        &self,
        _context: &Self::Context,
        _pool: &PgPool,
        _error: &str,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send {
        async { Ok(()) }
    }
}

/// Stores `job` in the caller's transaction; true when it was new. Workers wake when the
/// transaction commits.
pub async fn enqueue<J: Job>(conn: &mut PgConnection, job: &J) -> Result<bool, sqlx::Error> {
    let args = serde_json::to_value(job).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    queue::enqueue(
        conn,
        J::KIND,
        &job.key(),
        job.ordering_key().as_deref(),
        &args,
    )
    .await
}

/// A claimed outbound job under its lease, as the queue knows it.
#[derive(Debug, Clone)]
pub struct LeasedJob {
    pub id: i64,
    pub kind: String,
    pub job_key: String,
    pub args: serde_json::Value,
    pub attempts: i32,
    /// Fences completion: only the holder of this lease may complete the job.
    pub lease: DateTime<Utc>,
}

/// The running job's hold on the queue row.
pub struct Lease<'a> {
    pool: &'a PgPool,
    job: &'a LeasedJob,
}

/// Proof that a job completed (only [`Lease::complete`] makes one).
#[derive(Debug)]
pub struct Done(());

impl<'a> Lease<'a> {
    pub(crate) fn new(pool: &'a PgPool, job: &'a LeasedJob) -> Self {
        Self { pool, job }
    }

    pub fn pool(&self) -> &'a PgPool {
        self.pool
    }

    /// The job's key in the queue.
    pub fn key(&self) -> &'a str {
        &self.job.job_key
    }

    /// This attempt's number, from 1.
    pub fn attempt(&self) -> i32 {
        self.job.attempts
    }

    /// Deletes the job in `tx` and commits `tx` with it. A lost lease (another worker took
    /// the job over) rolls `tx` back and fails, retryably: the effects are the other
    /// worker's to make.
    pub async fn complete(self, mut tx: Transaction<'_, Postgres>) -> Result<Done, JobError> {
        if queue::complete(&mut tx, self.job).await? {
            tx.commit().await?;
            Ok(Done(()))
        } else {
            Err(JobError::retryable(anyhow::anyhow!(
                "lease lost; another worker took the job"
            )))
        }
    }

    /// [`Lease::complete`] for a job with nothing of its own to commit.
    pub async fn complete_alone(self) -> Result<Done, JobError> {
        let tx = self.pool.begin().await?;
        self.complete(tx).await
    }
}
