//! Customers: get-or-create (with the email claim of pre-created customers), update,
//! delete, and the link to a Stripe customer.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{Connection, PgConnection};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Customer {
    #[serde(skip)]
    pub pk: i64,
    pub id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub fingerprint: Option<String>,
    pub stripe_id: Option<String>,
    pub metadata: Value,
    #[serde(skip)]
    pub created_at: DateTime<Utc>,
}

/// The fields a caller may set.
#[derive(Debug, Clone, Default)]
pub struct CustomerFields {
    pub name: Option<String>,
    pub email: Option<String>,
    pub fingerprint: Option<String>,
    pub metadata: Option<Value>,
}

const COLUMNS: &str = "pk, id, name, email, fingerprint, stripe_id, metadata, created_at";

macro_rules! returning {
    ($sql:literal) => {
        concat!(
            $sql,
            " RETURNING pk, id, name, email, fingerprint, stripe_id, metadata, created_at"
        )
    };
}

/// The customer matching `condition`, a fixed SQL fragment on the parameter `$1`.
async fn find_one(
    conn: &mut PgConnection,
    condition: &'static str,
    value: &str,
) -> Result<Option<Customer>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM customers WHERE {condition}"
    )))
    .bind(value)
    .fetch_optional(conn)
    .await
}

pub async fn by_id(conn: &mut PgConnection, id: &str) -> Result<Option<Customer>, sqlx::Error> {
    find_one(conn, "id = $1", id).await
}

pub async fn by_stripe_id(
    conn: &mut PgConnection,
    stripe_id: &str,
) -> Result<Option<Customer>, sqlx::Error> {
    find_one(conn, "stripe_id = $1", stripe_id).await
}

/// The customer with `id`, locked until the transaction ends (a concurrent delete waits,
/// or has won and there is none).
pub async fn lock_by_id(
    conn: &mut PgConnection,
    id: &str,
) -> Result<Option<Customer>, sqlx::Error> {
    find_one(conn, "id = $1 FOR UPDATE", id).await
}

/// Finds the customer with `id`, else claims a pre-created one (no id yet) with the same
/// email, else creates one. Returns the customer and whether it is new; `None` only when
/// concurrent deletes took what it found several times over (the caller answers 409).
///
/// Safe under any concurrency: an email-only call inserts against the unique index on the
/// email of pre-created customers, so concurrent ones end with one customer; a call with an
/// id inserts against the unique id. A step that finds a row a concurrent delete then
/// removes simply looks again. Callers run it in a transaction.
pub async fn get_or_create(
    conn: &mut PgConnection,
    id: Option<&str>,
    fields: &CustomerFields,
) -> Result<Option<(Customer, bool)>, sqlx::Error> {
    const ATTEMPTS: usize = 5;
    for _ in 0..ATTEMPTS {
        let found = match id {
            None => by_email_or_create(conn, fields).await?,
            Some(id) => by_id_or_create(conn, id, fields).await?,
        };
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// Email only: the pre-created customer with this email, else a new one.
async fn by_email_or_create(
    conn: &mut PgConnection,
    fields: &CustomerFields,
) -> Result<Option<(Customer, bool)>, sqlx::Error> {
    let created: Option<Customer> = sqlx::query_as(returning!(
        "INSERT INTO customers (id, name, email, fingerprint, metadata)
         VALUES (NULL, $1, $2, $3, coalesce($4, '{}'::jsonb))
         ON CONFLICT (lower(email)) WHERE id IS NULL DO NOTHING"
    ))
    .bind(&fields.name)
    .bind(&fields.email)
    .bind(&fields.fingerprint)
    .bind(&fields.metadata)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(customer) = created {
        return Ok(Some((customer, true)));
    }
    // Another call created it (this statement sees its commit), unless it was claimed or
    // deleted since: then the caller looks again.
    let email = fields.email.as_deref().unwrap_or_default();
    let existing = find_one(conn, "id IS NULL AND lower(email) = lower($1)", email).await?;
    Ok(existing.map(|c| (c, false)))
}

/// The customer with `id` (refreshed), else a pre-created one claimed by email, else new.
async fn by_id_or_create(
    conn: &mut PgConnection,
    id: &str,
    fields: &CustomerFields,
) -> Result<Option<(Customer, bool)>, sqlx::Error> {
    if let Some(existing) = by_id(conn, id).await? {
        return Ok(refresh(conn, existing.pk, fields)
            .await?
            .map(|c| (c, false)));
    }
    if let Some(email) = fields.email.as_deref() {
        let claimed: Option<Customer> = sqlx::query_as(returning!(
            "UPDATE customers SET id = $1, updated_at = now(),
                    name = coalesce($3, name), fingerprint = coalesce($4, fingerprint),
                    metadata = coalesce($5, metadata)
             WHERE pk = (SELECT pk FROM customers
                         WHERE id IS NULL AND lower(email) = lower($2)
                         FOR UPDATE SKIP LOCKED)"
        ))
        .bind(id)
        .bind(email)
        .bind(&fields.name)
        .bind(&fields.fingerprint)
        .bind(&fields.metadata)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(customer) = claimed {
            return Ok(Some((customer, false)));
        }
    }
    let created: Option<Customer> = sqlx::query_as(returning!(
        "INSERT INTO customers (id, name, email, fingerprint, metadata)
         VALUES ($1, $2, $3, $4, coalesce($5, '{}'::jsonb))
         ON CONFLICT (id) DO NOTHING"
    ))
    .bind(id)
    .bind(&fields.name)
    .bind(&fields.email)
    .bind(&fields.fingerprint)
    .bind(&fields.metadata)
    .fetch_optional(&mut *conn)
    .await?;
    match created {
        Some(customer) => Ok(Some((customer, true))),
        // A concurrent call created it first (unless it was deleted again since).
        None => Ok(by_id(conn, id).await?.map(|c| (c, false))),
    }
}

/// Sets the given fields (absent ones stay as they are); `None` if the customer is gone.
async fn refresh(
    conn: &mut PgConnection,
    pk: i64,
    fields: &CustomerFields,
) -> Result<Option<Customer>, sqlx::Error> {
    sqlx::query_as(returning!(
        "UPDATE customers SET name = coalesce($2, name), email = coalesce($3, email),
                fingerprint = coalesce($4, fingerprint), metadata = coalesce($5, metadata),
                updated_at = now()
         WHERE pk = $1"
    ))
    .bind(pk)
    .bind(&fields.name)
    .bind(&fields.email)
    .bind(&fields.fingerprint)
    .bind(&fields.metadata)
    .fetch_optional(conn)
    .await
}

/// Updates name, email and metadata of the customer with `id`; `None` if there is none
/// (also when a concurrent delete wins).
pub async fn update(
    conn: &mut PgConnection,
    id: &str,
    fields: &CustomerFields,
) -> Result<Option<Customer>, sqlx::Error> {
    match by_id(conn, id).await? {
        Some(customer) => refresh(conn, customer.pk, fields).await,
        None => Ok(None),
    }
}

/// Deletes our customer and everything of theirs in our store (never anything in Stripe).
pub async fn delete(conn: &mut PgConnection, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM customers WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Unlinks every customer of ours from `stripe_id` (the Stripe customer was deleted): the
/// next Stripe customer made for it is a new one (`stripe_generation` moves on). Returns the
/// customer unlinked, if any.
pub async fn unlink_stripe(
    conn: &mut PgConnection,
    stripe_id: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE customers SET stripe_id = NULL, stripe_generation = stripe_generation + 1,
                updated_at = now()
         WHERE stripe_id = $1 RETURNING pk",
    )
    .bind(stripe_id)
    .fetch_optional(conn)
    .await
}

/// Copies a name and email changed in Stripe into ours, unless a newer Stripe event was
/// copied already; true when applied.
pub async fn sync_from_stripe(
    conn: &mut PgConnection,
    pk: i64,
    name: Option<&str>,
    email: Option<&str>,
    event_created: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE customers SET name = $2, email = $3, stripe_synced_created = $4,
                updated_at = now()
         WHERE pk = $1 AND stripe_synced_created <= $4",
    )
    .bind(pk)
    .bind(name)
    .bind(email)
    .bind(event_created)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// How many times the customer was unlinked from a deleted Stripe customer.
pub async fn stripe_generation(conn: &mut PgConnection, pk: i64) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar("SELECT stripe_generation FROM customers WHERE pk = $1")
        .bind(pk)
        .fetch_optional(conn)
        .await
        .map(Option::unwrap_or_default)
}

/// Links a Stripe customer to ours if ours has none yet. False if another link exists,
/// also one a concurrent transaction made (the unique violation is caught in a savepoint, so
/// the caller's transaction goes on).
pub async fn link_stripe(
    conn: &mut PgConnection,
    pk: i64,
    stripe_id: &str,
) -> Result<bool, sqlx::Error> {
    let mut savepoint = conn.begin().await?;
    let done = sqlx::query(
        "UPDATE customers SET stripe_id = $2, updated_at = now()
         WHERE pk = $1 AND (stripe_id IS NULL OR stripe_id = $2)
           AND NOT EXISTS (SELECT 1 FROM customers WHERE stripe_id = $2 AND pk <> $1)",
    )
    .bind(pk)
    .bind(stripe_id)
    .execute(&mut *savepoint)
    .await;
    match done {
        Ok(done) => {
            savepoint.commit().await?;
            Ok(done.rows_affected() == 1)
        }
        Err(error) if is_unique_violation(&error) => {
            savepoint.rollback().await?;
            Ok(false)
        }
        Err(error) => Err(error),
    }
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|e| e.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

pub async fn by_pk(conn: &mut PgConnection, pk: i64) -> Result<Option<Customer>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM customers WHERE pk = $1"
    )))
    .bind(pk)
    .fetch_optional(conn)
    .await
}

/// Customers linked to Stripe, optionally only the one with `id`.
pub async fn linked(
    conn: &mut PgConnection,
    id: Option<&str>,
) -> Result<Vec<Customer>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM customers
         WHERE stripe_id IS NOT NULL AND ($1::text IS NULL OR id = $1) ORDER BY pk"
    )))
    .bind(id)
    .fetch_all(conn)
    .await
}

/// What [`list`] looks for.
#[derive(Debug, Clone, Default)]
pub struct ListFilter<'a> {
    /// A case-insensitive substring of the id, name or email.
    pub search: Option<&'a str>,
    /// Only customers holding this plan (live or suspended)...
    pub plan_id: Option<&'a str>,
    /// ...or holding any plan in this status.
    pub status: Option<&'a str>,
    pub limit: i64,
    /// Keyset pagination: customers created before this one (by `pk`, newest first).
    pub before_pk: Option<i64>,
}

/// A customer in a list: who, and its plans that have not ended.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Listed {
    pub pk: i64,
    pub id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
    /// `(plan_id, status)` of each plan that has not ended.
    pub plans: sqlx::types::Json<Vec<(String, String)>>,
}

/// Customers matching `filter`, newest first. The search expression is the one the trigram
/// index `customers_search_idx` (migration 12) covers.
pub async fn list(
    conn: &mut PgConnection,
    filter: &ListFilter<'_>,
) -> Result<Vec<Listed>, sqlx::Error> {
    let pattern = filter.search.map(|s| {
        let escaped = s
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    });
    sqlx::query_as(
        "SELECT c.pk, c.id, c.name, c.email, c.created_at,
                coalesce((SELECT json_agg(json_build_array(p.plan_id, p.status) ORDER BY p.plan_id)
                          FROM customer_plans p
                          WHERE p.customer_pk = c.pk AND p.status <> 'expired'), '[]') AS plans
         FROM customers c
         WHERE ($1::text IS NULL
                OR lower(coalesce(c.id, '') || ' ' || coalesce(c.name, '') || ' '
                         || coalesce(c.email, '')) LIKE $1)
           AND ($2::text IS NULL AND $3::text IS NULL
                OR EXISTS (SELECT 1 FROM customer_plans p
                           WHERE p.customer_pk = c.pk
                             AND ($2::text IS NULL OR p.plan_id = $2)
                             AND ($3::text IS NULL AND p.status <> 'expired'
                                  OR p.status = $3)))
           AND ($4::bigint IS NULL OR c.pk < $4)
         ORDER BY c.pk DESC
         LIMIT $5",
    )
    .bind(pattern)
    .bind(filter.plan_id)
    .bind(filter.status)
    .bind(filter.before_pk)
    .bind(filter.limit)
    .fetch_all(conn)
    .await
}
