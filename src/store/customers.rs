//! Customers: get-or-create (with the email claim of pre-created customers), update,
//! delete, and the link to a Stripe customer. Their name and email against Stripe's are in
//! `customer_contact`, lists and search in `customer_list` (re-exported here).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{Connection, PgConnection};

pub use super::customer_contact::*;
pub use super::customer_list::{ListFilter, Listed, list};

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

/// The key of the customer linked to `stripe_id`, else of the one whose id is `our_id`, in
/// one query; true when found by the Stripe id.
pub async fn pk_by_stripe_id_or_id(
    conn: &mut PgConnection,
    stripe_id: Option<&str>,
    our_id: Option<&str>,
) -> Result<Option<(i64, bool)>, sqlx::Error> {
    if stripe_id.is_none() && our_id.is_none() {
        return Ok(None);
    }
    // The rule is the SQL function `customer_for` (migration 32), which the subscription
    // paths read too.
    sqlx::query_as("SELECT pk, by_stripe FROM customer_for($1, $2)")
        .bind(stripe_id)
        .bind(our_id)
        .fetch_optional(conn)
        .await
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

/// How many times the customer was unlinked from a deleted Stripe customer.
pub async fn stripe_generation(conn: &mut PgConnection, pk: i64) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar("SELECT stripe_generation FROM customers WHERE pk = $1")
        .bind(pk)
        .fetch_optional(conn)
        .await
        .map(Option::unwrap_or_default)
}

/// How the reason of an event skipped for want of a linked customer begins: linking that
/// customer re-applies such events ([`link_stripe`]).
pub const UNKNOWN_CUSTOMER: &str = "unknown Stripe customer";

/// Links a Stripe customer to ours if ours has none yet. False if another link exists,
/// also one a concurrent transaction made (the unique violation is caught in a savepoint, so
/// the caller's transaction goes on). Events of that Stripe customer skipped for want of the
/// link are queued again in the same transaction, wherever the link is written.
pub async fn link_stripe(
    conn: &mut PgConnection,
    pk: i64,
    stripe_id: &str,
) -> Result<bool, sqlx::Error> {
    let mut savepoint = conn.begin().await?;
    match link_stripe_many(&mut savepoint, &[(pk, stripe_id)]).await {
        Ok(linked) => {
            savepoint.commit().await?;
            Ok(!linked.is_empty())
        }
        Err(error) if is_unique_violation(&error) => {
            savepoint.rollback().await?;
            Ok(false)
        }
        Err(error) => Err(error),
    }
}

/// [`link_stripe`] for many customers (each with its Stripe id, no Stripe id twice) in two
/// statements and no savepoint: a link a concurrent transaction made first fails the caller's
/// transaction with a unique violation (an applier's batch then runs again one event at a
/// time, through [`link_stripe`]). Answers the Stripe ids linked.
pub async fn link_stripe_many(
    conn: &mut PgConnection,
    links: &[(i64, &str)],
) -> Result<Vec<String>, sqlx::Error> {
    let (pks, stripe_ids): (Vec<i64>, Vec<&str>) = links.iter().copied().unzip();
    let linked: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(LINK.get(links.len() > 1)))
        .bind(&pks)
        .bind(&stripe_ids)
        .fetch_all(&mut *conn)
        .await?;
    if !linked.is_empty() {
        // What was skipped for want of these links applies now, after the events that
        // linked them (in `created` order among themselves).
        outbox::queue::requeue_skipped(conn, &linked, UNKNOWN_CUSTOMER).await?;
    }
    Ok(linked)
}

/// [`link_stripe_many`]'s statement: for many links or for one ([`super::rows`]).
static LINK: super::rows::Statement = super::rows::Statement::new(link_sql);

fn link_sql(many: bool) -> String {
    let input = super::rows::input(many, &[("pk", "bigint"), ("stripe_id", "text")]);
    format!(
        "UPDATE customers c SET stripe_id = l.stripe_id, updated_at = now()
         FROM ({input}) AS l
         WHERE c.pk = l.pk AND (c.stripe_id IS NULL OR c.stripe_id = l.stripe_id)
           AND NOT EXISTS (SELECT 1 FROM customers o
                           WHERE o.stripe_id = l.stripe_id AND o.pk <> l.pk)
         RETURNING c.stripe_id"
    )
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
