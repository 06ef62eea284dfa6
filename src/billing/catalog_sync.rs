//! Catalog sync: each plan gets a Stripe product and prices, created lazily the first time an
//! attach needs them, in the current Stripe account (recreated when the account changes).
//! Keys are derived from the plan, its catalog content and the account, so concurrent
//! attaches of one plan create one product.

use std::collections::HashMap;

use sqlx::PgPool;

use super::StripeContext;
use crate::catalog::Plan;
use crate::store::stripe_ids::{self, PlanObjects};
use outbox::JobError;

/// The plan's Stripe objects in the current account, creating what is missing.
pub(super) async fn ensure_plan_objects(
    stripe: &StripeContext,
    pool: &PgPool,
    plan: &Plan,
) -> Result<PlanObjects, JobError> {
    let mut conn = pool.acquire().await?;
    let existing = stripe_ids::plan_objects(&mut conn, &plan.id, &stripe.account).await?;
    drop(conn);
    create_missing(stripe, pool, plan, existing, "").await
}

/// The account no longer knows an object we stored for the plan (`lost`, as Stripe named it
/// in its refusal): creates all of the plan's objects again. The keys name `lost`, so every
/// attach that met the same loss gets the same new objects, and none of the old keys'
/// answers (the lost ids) come back.
pub(super) async fn recreate_plan_objects(
    stripe: &StripeContext,
    pool: &PgPool,
    plan: &Plan,
    lost: &str,
) -> Result<PlanObjects, JobError> {
    tracing::warn!(plan = %plan.id, lost, "Stripe lost the plan's objects; creating them again");
    create_missing(stripe, pool, plan, None, &format!("-after-{lost}")).await
}

async fn create_missing(
    stripe: &StripeContext,
    pool: &PgPool,
    plan: &Plan,
    existing: Option<PlanObjects>,
    key_suffix: &str,
) -> Result<PlanObjects, JobError> {
    let wanted_usage = plan
        .items
        .iter()
        .filter(|i| i.usage_price.is_some())
        .count();
    if let Some(objects) = &existing
        && objects.product.is_some()
        && (plan.price.is_none() || objects.price.is_some())
        && objects.usage_prices.len() == wanted_usage
    {
        return Ok(objects.clone());
    }
    let mut objects = existing.unwrap_or_default();
    let version = &plan_digest(plan)[..12];
    let key = |what: &str| {
        format!(
            "rc-{what}-{}-{}-{version}{key_suffix}",
            plan.id, stripe.account
        )
    };
    let metadata = |extra: &[(&str, &str)]| {
        let mut m = HashMap::from([("plan_id".to_owned(), plan.id.clone())]);
        m.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        m
    };
    let product = match objects.product.clone() {
        Some(p) => p,
        None => {
            stripe
                .api
                .create_product(&key("product"), &plan.name, metadata(&[]))
                .await?
        }
    };
    objects.product = Some(product.clone());
    if let (Some(price), None) = (&plan.price, &objects.price) {
        let id = stripe
            .api
            .create_price(
                &key("price"),
                &product,
                price.amount,
                &price.currency,
                Some(price.interval),
                metadata(&[]),
            )
            .await?;
        objects.price = Some(id);
    }
    for item in &plan.items {
        let (Some(usage), Some(price)) = (&item.usage_price, &plan.price) else {
            continue;
        };
        if objects.usage_prices.contains_key(&item.feature) {
            continue;
        }
        // Usage has its own product, "Plan - Feature", with a one-time price per unit.
        let usage_product = stripe
            .api
            .create_product(
                &key(&format!("usage-product-{}", item.feature)),
                &format!("{} - {}", plan.name, item.feature),
                metadata(&[("feature_id", &item.feature)]),
            )
            .await?;
        let id = stripe
            .api
            .create_price(
                &key(&format!("usage-price-{}", item.feature)),
                &usage_product,
                usage.per_unit,
                &price.currency,
                None,
                metadata(&[("feature_id", &item.feature)]),
            )
            .await?;
        objects.usage_prices.insert(item.feature.clone(), id);
    }
    let mut conn = pool.acquire().await?;
    stripe_ids::save_plan_objects(&mut conn, &plan.id, &stripe.account, &objects).await?;
    Ok(objects)
}

fn plan_digest(plan: &Plan) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(
        serde_json::to_vec(plan).expect("plans serialize"),
    ))
}
