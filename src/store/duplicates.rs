//! Double billing that `reconcile` found: more than one live Stripe subscription for one
//! plan of one customer (the `reconciler_duplicate_subscriptions` gauge, `status`).

use std::collections::BTreeMap;

use sqlx::{PgConnection, PgPool};

/// Replaces what was recorded for the customer with `duplicates`.
pub async fn record(
    conn: &mut PgConnection,
    customer_pk: i64,
    duplicates: &BTreeMap<String, Vec<String>>,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM duplicate_subscriptions WHERE customer_pk = $1")
        .bind(customer_pk)
        .execute(&mut *conn)
        .await?;
    for (plan, ids) in duplicates {
        sqlx::query(
            "INSERT INTO duplicate_subscriptions (customer_pk, plan_id, subscription_ids)
             VALUES ($1, $2, $3)",
        )
        .bind(customer_pk)
        .bind(plan)
        .bind(ids)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Plans billed more than once, as last found.
pub async fn count(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM duplicate_subscriptions")
        .fetch_one(pool)
        .await
}
