//! Customers: get-or-create (with the email claim of pre-created customers), update,
//! delete, the link to a Stripe customer, and the full view the API returns.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;

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

pub async fn by_id(conn: &mut PgConnection, id: &str) -> Result<Option<Customer>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM customers WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

pub async fn by_stripe_id(
    conn: &mut PgConnection,
    stripe_id: &str,
) -> Result<Option<Customer>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM customers WHERE stripe_id = $1"
    )))
    .bind(stripe_id)
    .fetch_optional(conn)
    .await
}

/// Finds the customer with `id`, else claims a pre-created one (no id yet) with the same
/// email, else creates one. Returns the customer and whether it is new. Safe under
/// concurrent calls with the same id or email. Callers run it in a transaction.
pub async fn get_or_create(
    conn: &mut PgConnection,
    id: Option<&str>,
    fields: &CustomerFields,
) -> Result<(Customer, bool), sqlx::Error> {
    let Some(id) = id else {
        // Email only: a pre-created customer, waiting to be claimed.
        let email = fields.email.as_deref().unwrap_or_default();
        let existing: Option<Customer> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM customers WHERE id IS NULL AND lower(email) = lower($1)
             ORDER BY pk LIMIT 1"
        )))
        .bind(email)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(customer) = existing {
            return Ok((customer, false));
        }
        return Ok((
            insert(conn, None, fields)
                .await?
                .expect("no conflict on a null id"),
            true,
        ));
    };
    if let Some(existing) = by_id(conn, id).await? {
        return Ok((refresh(conn, existing.pk, fields).await?, false));
    }
    if let Some(email) = fields.email.as_deref() {
        let claimed: Option<Customer> = sqlx::query_as(returning!(
            "UPDATE customers SET id = $1, updated_at = now(),
                    name = coalesce($3, name), fingerprint = coalesce($4, fingerprint),
                    metadata = coalesce($5, metadata)
             WHERE pk = (SELECT pk FROM customers
                         WHERE id IS NULL AND lower(email) = lower($2)
                         ORDER BY pk LIMIT 1 FOR UPDATE SKIP LOCKED)"
        ))
        .bind(id)
        .bind(email)
        .bind(&fields.name)
        .bind(&fields.fingerprint)
        .bind(&fields.metadata)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(customer) = claimed {
            return Ok((customer, false));
        }
    }
    match insert(conn, Some(id), fields).await? {
        Some(created) => Ok((created, true)),
        // A concurrent call created it first.
        None => Ok((
            by_id(conn, id).await?.expect("the conflicting row exists"),
            false,
        )),
    }
}

async fn insert(
    conn: &mut PgConnection,
    id: Option<&str>,
    fields: &CustomerFields,
) -> Result<Option<Customer>, sqlx::Error> {
    sqlx::query_as(returning!(
        "INSERT INTO customers (id, name, email, fingerprint, metadata)
         VALUES ($1, $2, $3, $4, coalesce($5, '{}'::jsonb))
         ON CONFLICT (id) DO NOTHING"
    ))
    .bind(id)
    .bind(&fields.name)
    .bind(&fields.email)
    .bind(&fields.fingerprint)
    .bind(&fields.metadata)
    .fetch_optional(conn)
    .await
}

/// Sets the given fields (absent ones stay as they are).
async fn refresh(
    conn: &mut PgConnection,
    pk: i64,
    fields: &CustomerFields,
) -> Result<Customer, sqlx::Error> {
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
    .fetch_one(conn)
    .await
}

/// Updates name, email and metadata of the customer with `id`.
pub async fn update(
    conn: &mut PgConnection,
    id: &str,
    fields: &CustomerFields,
) -> Result<Option<Customer>, sqlx::Error> {
    match by_id(conn, id).await? {
        Some(customer) => Ok(Some(refresh(conn, customer.pk, fields).await?)),
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

/// Links a Stripe customer to ours if ours has none yet. False if another link exists.
pub async fn link_stripe(
    conn: &mut PgConnection,
    pk: i64,
    stripe_id: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE customers SET stripe_id = $2, updated_at = now()
         WHERE pk = $1 AND (stripe_id IS NULL OR stripe_id = $2)
           AND NOT EXISTS (SELECT 1 FROM customers WHERE stripe_id = $2 AND pk <> $1)",
    )
    .bind(pk)
    .bind(stripe_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The customer as `GET /v1/customers/{id}` shows it.
pub async fn view(conn: &mut PgConnection, customer: &Customer) -> Result<Value, sqlx::Error> {
    let products: Vec<Value> = sqlx::query_scalar(
        "SELECT jsonb_build_object(
                    'plan_id', plan_id, 'status', status,
                    'stripe_subscription_id', stripe_subscription_id,
                    'current_period_end', current_period_end,
                    'cancel_at_period_end', cancel_at_period_end,
                    'canceled_at', canceled_at, 'quantity', quantity)
         FROM customer_plans
         WHERE customer_pk = $1 AND status <> 'expired'
         ORDER BY plan_id, id",
    )
    .bind(customer.pk)
    .fetch_all(&mut *conn)
    .await?;
    let balances: Vec<Value> = sqlx::query_scalar(
        "SELECT jsonb_build_object(
                    'feature_id', feature_id, 'included', included, 'used', used,
                    'balance', included - used, 'unlimited', unlimited,
                    'next_reset_at', next_reset_at)
         FROM balances WHERE customer_pk = $1 ORDER BY feature_id",
    )
    .bind(customer.pk)
    .fetch_all(&mut *conn)
    .await?;
    let invoices: Vec<Value> = sqlx::query_scalar(
        "SELECT jsonb_build_object(
                    'stripe_id', stripe_id, 'status', status, 'total', total,
                    'currency', currency, 'plan_ids', plan_ids,
                    'hosted_invoice_url', hosted_invoice_url, 'created_at', created_at)
         FROM invoices WHERE customer_pk = $1 ORDER BY created_at DESC, stripe_id",
    )
    .bind(customer.pk)
    .fetch_all(&mut *conn)
    .await?;
    let mut view = serde_json::to_value(customer).expect("customers serialize");
    view["products"] = products.into();
    view["balances"] = balances.into();
    view["invoices"] = invoices.into();
    Ok(view)
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
