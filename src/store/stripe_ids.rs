//! The Stripe objects created for our catalog and usage: plan products and prices (per Stripe
//! account), and the usage items added to renewal invoices.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::PgConnection;
use sqlx::types::Json;

/// A plan's Stripe objects in one account.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlanObjects {
    pub product: Option<String>,
    pub price: Option<String>,
    /// Feature id → one-time price used for its usage over `included`.
    pub usage_prices: HashMap<String, String>,
}

/// The plan's objects, if they were created in `account`.
pub async fn plan_objects(
    conn: &mut PgConnection,
    plan_id: &str,
    account: &str,
) -> Result<Option<PlanObjects>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        stripe_product_id: Option<String>,
        stripe_price_id: Option<String>,
        usage_prices: Json<HashMap<String, String>>,
    }
    let row: Option<Row> = sqlx::query_as(
        "SELECT stripe_product_id, stripe_price_id, usage_prices FROM catalog_plans
         WHERE id = $1 AND stripe_account = $2",
    )
    .bind(plan_id)
    .bind(account)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| PlanObjects {
        product: r.stripe_product_id,
        price: r.stripe_price_id,
        usage_prices: r.usage_prices.0,
    }))
}

/// How many times this process recorded plan objects: a price remembered as unknown before
/// the latest is looked up again (`sync::prices`).
static PLAN_OBJECTS_SAVED: AtomicU64 = AtomicU64::new(0);

/// See [`PLAN_OBJECTS_SAVED`].
pub fn plan_objects_saved() -> u64 {
    PLAN_OBJECTS_SAVED.load(Ordering::Acquire)
}

/// Records the plan's objects in `account` (replacing those of another account).
pub async fn save_plan_objects(
    conn: &mut PgConnection,
    plan_id: &str,
    account: &str,
    objects: &PlanObjects,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE catalog_plans SET stripe_account = $2, stripe_product_id = $3,
                stripe_price_id = $4, usage_prices = $5
         WHERE id = $1",
    )
    .bind(plan_id)
    .bind(account)
    .bind(&objects.product)
    .bind(&objects.price)
    .bind(Json(&objects.usage_prices))
    .execute(conn)
    .await?;
    PLAN_OBJECTS_SAVED.fetch_add(1, Ordering::AcqRel);
    Ok(())
}

/// Whether usage for (invoice, feature) was billed (or found to be zero) already.
pub async fn usage_billed(
    conn: &mut PgConnection,
    invoice_id: &str,
    feature_id: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM invoice_usage_items WHERE invoice_id = $1 AND feature_id = $2)",
    )
    .bind(invoice_id)
    .bind(feature_id)
    .fetch_one(conn)
    .await
}

pub async fn record_usage_billed(
    conn: &mut PgConnection,
    invoice_id: &str,
    feature_id: &str,
    customer_pk: i64,
    units: i64,
    amount: i64,
    stripe_item_id: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO invoice_usage_items (invoice_id, feature_id, customer_pk, units, amount, stripe_item_id)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(invoice_id)
    .bind(feature_id)
    .bind(customer_pk)
    .bind(units)
    .bind(amount)
    .bind(stripe_item_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Usage recorded for a customer's feature in [start, end).
pub async fn usage_between(
    conn: &mut PgConnection,
    customer_pk: i64,
    feature_id: &str,
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT least(coalesce(sum(value), 0), 9223372036854775807)::bigint FROM usage_events
         WHERE customer_pk = $1 AND feature_id = $2 AND recorded_at >= $3 AND recorded_at < $4",
    )
    .bind(customer_pk)
    .bind(feature_id)
    .bind(start)
    .bind(end)
    .fetch_one(conn)
    .await
}

/// The plan of each of `price_ids` that a plan's stored Stripe prices include (its price or
/// one of its usage prices), in one query: `(price, plan)` pairs.
pub async fn plans_of_prices(
    conn: &mut PgConnection,
    price_ids: &[&str],
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT p.price, c.id FROM unnest($1::text[]) AS p (price)
         JOIN catalog_plans c ON c.stripe_price_id = p.price OR c.usage_prices ? p.price",
    )
    .bind(price_ids)
    .fetch_all(conn)
    .await
}
