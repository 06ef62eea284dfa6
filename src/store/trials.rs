//! Free-trial claims: once per (customer, plan) and once per (fingerprint, plan).

use sqlx::PgConnection;

/// A fingerprint as it is stored and compared: without the whitespace around it (Unicode
/// `White_Space`, as `str::trim`; migration 24 trims stored ones the same way), case kept (a
/// card's or a device's fingerprint is a case-sensitive identifier: folding it would make
/// two different ones one). Nothing but whitespace is no fingerprint, not one shared by
/// every such account.
pub fn normalize(fingerprint: &str) -> Option<&str> {
    Some(fingerprint.trim()).filter(|f| !f.is_empty())
}

/// Claims the plan's trial for an attach, unless the customer or another customer with the
/// same fingerprint had it (or has one in flight); true when claimed. Concurrent claims of
/// one fingerprint or customer wait for each other (transaction-scoped advisory locks), so
/// two accounts racing with one fingerprint get one trial.
pub async fn claim(
    conn: &mut PgConnection,
    customer_pk: i64,
    fingerprint: Option<&str>,
    plan_id: &str,
    attach_id: &str,
    days: i32,
) -> Result<bool, sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('trial:customer:' || $1::text))")
        .bind(customer_pk)
        .execute(&mut *conn)
        .await?;
    let fingerprint = fingerprint.and_then(normalize);
    if let Some(fingerprint) = fingerprint {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('trial:fingerprint:' || $1))")
            .bind(fingerprint)
            .execute(&mut *conn)
            .await?;
    }
    let had: bool = sqlx::query_scalar(
        "SELECT EXISTS (
             SELECT 1 FROM trials t LEFT JOIN attaches a ON a.id = t.attach_id
             WHERE t.plan_id = $3
               AND (t.customer_pk = $1 OR ($2::text IS NOT NULL AND t.fingerprint = $2))
               -- a trial whose attach never got a subscription was not used
               AND (a.id IS NULL OR a.state NOT IN ('failed', 'expired')))",
    )
    .bind(customer_pk)
    .bind(fingerprint)
    .bind(plan_id)
    .fetch_one(&mut *conn)
    .await?;
    if had {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO trials (customer_pk, fingerprint, plan_id, attach_id, days)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(customer_pk)
    .bind(fingerprint)
    .bind(plan_id)
    .bind(attach_id)
    .bind(days)
    .execute(conn)
    .await?;
    Ok(true)
}
