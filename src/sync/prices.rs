//! The plans of Stripe prices, each read from the store once and remembered.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use sqlx::PgConnection;

use crate::catalog::{Catalog, Plan};
use crate::store::stripe_ids;
use crate::stripe::objects::Metadata;

fn plan_in_metadata<'c>(catalog: &'c Catalog, metadata: &[Option<&Metadata>]) -> Option<&'c Plan> {
    metadata
        .iter()
        .flatten()
        .find_map(|m| m.get("plan_id"))
        .and_then(|id| catalog.plan(id))
}

/// The plans of Stripe prices seen before, so applying an invoice or a subscription reads
/// each price once.
///
/// The catalog sync creates each Stripe price for one plan and never gives it to another,
/// so a plan found for a price stays right, also when the catalog or the Stripe account
/// changes later (old invoices still name the plan they billed). A price not found is read
/// again next time, since a sync may store it at any moment. Only found prices are kept, so
/// the map grows with the prices the catalog ever had, not with what events carry.
#[derive(Default)]
pub(crate) struct PricePlans(Mutex<HashMap<String, String>>);

impl PricePlans {
    /// The plan of `price`, else of `plan_id` in `metadata`.
    pub(crate) async fn resolve<'c>(
        &self,
        conn: &mut PgConnection,
        catalog: &'c Catalog,
        price: Option<&str>,
        metadata: &Metadata,
    ) -> Result<Option<&'c Plan>, sqlx::Error> {
        let prices: Vec<&str> = price.into_iter().collect();
        self.resolve_many(conn, catalog, &prices, &[Some(metadata)])
            .await
    }

    /// The plan of a subscription's `prices`, stored price ids first (the first by plan id of
    /// those a plan has), else of `plan_id` in the first `metadata` that names one.
    pub(super) async fn resolve_many<'c>(
        &self,
        conn: &mut PgConnection,
        catalog: &'c Catalog,
        prices: &[&str],
        metadata: &[Option<&Metadata>],
    ) -> Result<Option<&'c Plan>, sqlx::Error> {
        let (mut plans, unknown): (Vec<String>, Vec<&str>) = {
            let known = self.known();
            let mut plans = Vec::with_capacity(prices.len());
            let mut unknown = Vec::new();
            for price in prices {
                match known.get(*price) {
                    Some(plan) => plans.push(plan.clone()),
                    None => unknown.push(*price),
                }
            }
            (plans, unknown)
        };
        // The prices not seen before, in one query; those a plan has are kept.
        if !unknown.is_empty() {
            for (price, plan) in stripe_ids::plans_of_prices(conn, &unknown).await? {
                self.known().insert(price, plan.clone());
                plans.push(plan);
            }
        }
        Ok(plans
            .into_iter()
            .min()
            .and_then(|id| catalog.plan(&id))
            .or_else(|| plan_in_metadata(catalog, metadata)))
    }

    fn known(&self) -> MutexGuard<'_, HashMap<String, String>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
