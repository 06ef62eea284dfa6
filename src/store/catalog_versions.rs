//! The catalog's versions: each distinct catalog once (`catalog_versions`), and each plan's
//! current definition (`catalog_plans`, where the catalog sync keeps its Stripe ids).

use sqlx::PgPool;

use crate::catalog::Catalog;

/// Stores `catalog` as the current version (a new version only when it changed);
/// returns the version number.
pub async fn store(pool: &PgPool, catalog: &Catalog) -> Result<i32, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let body = serde_json::to_value(catalog).expect("the catalog serializes");
    let version: i32 = sqlx::query_scalar(
        "WITH new AS (
             INSERT INTO catalog_versions (digest, body) VALUES ($1, $2)
             ON CONFLICT (digest) DO NOTHING RETURNING version)
         SELECT version FROM new
         UNION ALL SELECT version FROM catalog_versions WHERE digest = $1
         LIMIT 1",
    )
    .bind(catalog.digest())
    .bind(&body)
    .fetch_one(&mut *tx)
    .await?;
    for plan in &catalog.plans {
        sqlx::query(
            "INSERT INTO catalog_plans (id, body, version) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body, version = EXCLUDED.version",
        )
        .bind(&plan.id)
        .bind(serde_json::to_value(plan).expect("plans serialize"))
        .bind(version)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(version)
}
