//! The durable request: something a caller asks for that has to be carried out in Stripe
//! once, whatever the retries. Attaches, plan changes and reward grants are its kinds, one
//! file each here ([`Request`]: what it records, which earlier request a repeat gets, its job,
//! how it is carried out); their rows are SQL in [`crate::store`], their Stripe work in
//! [`crate::billing`]. The mechanism is the same for all:
//!
//! 1. [`record`]: the request is stored as `pending` and its job queued in the caller's
//!    transaction; a request that repeats an earlier one (its idempotency key again; for an
//!    attach, a plan already in flight) gets that one instead, when it asks the same (else
//!    [`RecordError::Reused`], Stripe's `idempotency_error`).
//! 2. [`run`]: the job, under its lease, reads the row; one that is no longer pending (done
//!    already, or deleted with its customer) completes the job and nothing else. Otherwise
//!    the kind carries it out: its effects and the row marked done commit with the job's
//!    completion; a refusal marks it `failed` with the reason.
//! 3. [`on_dead`]: a job that goes dead marks its request `failed` with the error.
//! 4. [`wait`]: the caller waits a moment for the outcome, so it usually gets it in one call.

pub mod attach;
pub mod plan_change;
pub mod reward_grant;

use std::pin::Pin;
use std::time::Duration;

use outbox::{Done, Job, JobError, Lease};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use crate::store::requests::{self as table, Table};

/// What carrying a request out did, uncommitted (its effects, committed with the row marked
/// done and the job's completion, and what the row records), or why it cannot be done.
pub type Outcome<D> = Result<(Transaction<'static, Postgres>, D), String>;

/// A kind of durable request.
pub trait Request: Table + Sync + Sized {
    /// What a caller asks for, in its words: a repeat is answered with the earlier request
    /// only when it asks the same.
    type Asked<'a>: Send + Sync;
    /// What a new request records.
    type New<'a>: Send + Sync;
    /// The job that carries it out.
    type Job: Job;
    /// What a done request records besides its state.
    type Done: Send;

    fn id(&self) -> &str;

    fn state(&self) -> &str;

    /// Not carried out yet.
    fn is_pending(&self) -> bool {
        self.state() == "pending"
    }

    /// What `new` asks for.
    fn asked<'a>(new: &Self::New<'a>) -> Self::Asked<'a>;

    /// The earlier request that `asked` repeats, if any.
    fn earlier(
        conn: &mut PgConnection,
        asked: &Self::Asked<'_>,
    ) -> impl Future<Output = Result<Option<Self>, sqlx::Error>> + Send;

    /// What differs between this request and `asked`, which repeats it (none: it answers).
    fn differs(&self, asked: &Self::Asked<'_>) -> Option<&'static str>;

    /// Stores `new` as pending; `None` when an earlier request conflicts with it.
    fn insert(
        conn: &mut PgConnection,
        new: &Self::New<'_>,
    ) -> impl Future<Output = Result<Option<Self>, sqlx::Error>> + Send;

    /// The job to queue for it (`new` is what it was recorded from).
    fn job(&self, new: &Self::New<'_>) -> Self::Job;

    /// Carries out a pending request.
    fn carry_out(
        &self,
        context: &<Self::Job as Job>::Context,
        pool: &PgPool,
    ) -> impl Future<Output = Result<Outcome<Self::Done>, JobError>> + Send;

    /// Marks the request done, with what it did, in the transaction of its effects.
    fn finish(
        &self,
        conn: &mut PgConnection,
        done: Self::Done,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

/// A future of [`earlier`] or [`record`].
pub type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The earlier request asked for something else; `differs` names what.
    #[error("{differs} differs")]
    Reused { differs: &'static str },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The earlier request `asked` repeats, if any, provided it asks the same.
// Boxed, as `record` is: a front door's future that awaits these directly is not `Send` to
// rustc (the kinds' associated types have lifetimes: "Send is not general enough").
pub fn earlier<'a, R: Request>(
    conn: &'a mut PgConnection,
    asked: &'a R::Asked<'_>,
) -> Boxed<'a, Result<Option<R>, RecordError>> {
    Box::pin(async move {
        let Some(earlier) = R::earlier(conn, asked).await? else {
            return Ok(None);
        };
        match earlier.differs(asked) {
            Some(differs) => Err(RecordError::Reused { differs }),
            None => Ok(Some(earlier)),
        }
    })
}

/// Records `new` and queues its job, in the caller's transaction; returns it and whether it
/// is an earlier request that `new` repeats (then nothing new is recorded nor queued).
pub fn record<'a, R: Request>(
    conn: &'a mut PgConnection,
    new: &'a R::New<'_>,
) -> Boxed<'a, Result<(R, bool), RecordError>> {
    Box::pin(async move {
        if let Some(created) = R::insert(conn, new).await? {
            outbox::enqueue(conn, &created.job(new)).await?;
            return Ok((created, false));
        }
        let earlier = earlier(conn, &R::asked(new)).await?;
        Ok((earlier.ok_or(sqlx::Error::RowNotFound)?, true))
    })
}

/// The request's job: carries it out if it is still pending.
pub async fn run<R: Request>(
    context: &<R::Job as Job>::Context,
    lease: Lease<'_>,
    id: &str,
) -> Result<Done, JobError> {
    let pool = lease.pool();
    let mut conn = pool.acquire().await?;
    let request = table::get::<R>(&mut conn, id).await?;
    drop(conn);
    let Some(request) = request.filter(R::is_pending) else {
        // Deleted with its customer, or carried out already.
        return lease.complete_alone().await;
    };
    match request.carry_out(context, pool).await? {
        Ok((mut tx, done)) => {
            request.finish(&mut tx, done).await?;
            lease.complete(tx).await
        }
        Err(why) => {
            let mut tx = pool.begin().await?;
            table::fail::<R>(&mut tx, id, &why).await?;
            lease.complete(tx).await
        }
    }
}

/// The request's job went dead: the request failed, with the error.
pub async fn on_dead<R: Request>(pool: &PgPool, id: &str, error: &str) -> Result<(), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    table::fail::<R>(&mut conn, id, error).await?;
    Ok(())
}

/// `current` once it is no longer pending, or as it stands after `wait`: the row is read
/// again every 25 ms.
pub async fn wait<R: Request>(pool: &PgPool, current: R, wait: Duration) -> Result<R, sqlx::Error> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut current = current;
    while current.is_pending() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(25)).await;
        let mut conn = pool.acquire().await?;
        match table::get::<R>(&mut conn, current.id()).await? {
            Some(newer) => current = newer,
            // Deleted with its customer.
            None => break,
        }
    }
    Ok(current)
}
