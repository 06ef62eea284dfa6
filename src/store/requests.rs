//! The SQL every durable request's table answers the same way ([`crate::requests`]): attaches,
//! plan changes and reward grants each have a table of their own whose rows have an `id`, a
//! `customer_pk`, a `state` (`pending` until the job that carries the request out ran), an
//! `error` and `updated_at`; those a caller names by idempotency key also have
//! `idempotency_key`, unique per customer.

use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, FromRow, PgConnection};

/// A table of durable requests, read whole into `Self`.
pub trait Table: for<'r> FromRow<'r, PgRow> + Send + Unpin {
    /// The table's name.
    const TABLE: &'static str;
    /// The columns `Self` reads, comma-separated.
    const COLUMNS: &'static str;
}

/// The request `id`, if any.
pub async fn get<T: Table>(conn: &mut PgConnection, id: &str) -> Result<Option<T>, sqlx::Error> {
    let (columns, table) = (T::COLUMNS, T::TABLE);
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {columns} FROM {table} WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The customer's request made with idempotency key `key`, if any.
pub async fn by_key<T: Table>(
    conn: &mut PgConnection,
    customer_pk: i64,
    key: &str,
) -> Result<Option<T>, sqlx::Error> {
    let (columns, table) = (T::COLUMNS, T::TABLE);
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {columns} FROM {table} WHERE customer_pk = $1 AND idempotency_key = $2"
    )))
    .bind(customer_pk)
    .bind(key)
    .fetch_optional(conn)
    .await
}

/// A pending request could not be carried out, for `error`; false when it was not pending.
pub async fn fail<T: Table>(
    conn: &mut PgConnection,
    id: &str,
    error: &str,
) -> Result<bool, sqlx::Error> {
    let table = T::TABLE;
    let done = sqlx::query(AssertSqlSafe(format!(
        "UPDATE {table} SET state = 'failed', error = $2, updated_at = now()
         WHERE id = $1 AND state = 'pending'"
    )))
    .bind(id)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
