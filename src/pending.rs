//! Waiting briefly for what the outbox carries out (an attach, a plan change, a reward grant),
//! so a caller usually gets the outcome in one call: the row is read again every 25 ms until
//! it is no longer pending or the wait is over.

use std::time::Duration;

use sqlx::{PgConnection, PgPool};

/// A request stored as a row that says whether the outbox has carried it out yet.
pub trait Pending: Sized {
    fn is_pending(&self) -> bool;

    /// The row as it stands now; `None` when it is gone (deleted with its customer).
    fn reread(
        &self,
        conn: &mut PgConnection,
    ) -> impl Future<Output = Result<Option<Self>, sqlx::Error>> + Send;
}

/// `current` once it is no longer pending, or as it stands after `wait`.
pub async fn wait<T: Pending>(pool: &PgPool, current: T, wait: Duration) -> Result<T, sqlx::Error> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut current = current;
    while current.is_pending() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(25)).await;
        let mut conn = pool.acquire().await?;
        match current.reread(&mut conn).await? {
            Some(newer) => current = newer,
            None => break,
        }
    }
    Ok(current)
}
