//! The plans of Stripe prices, each read from the store once and remembered.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

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
/// changes later (old invoices still name the plan they billed). The map grows with the
/// prices the catalog ever had, not with what events carry.
///
/// A price no plan has (a product outside the catalog, or a price the catalog sync has not
/// stored yet) is remembered as unknown for [`UNKNOWN_FOR`], and only used so when the
/// object's metadata names a plan: the answer is then that plan whether the price is read or
/// not, unless a sync stored the price for another plan in the meantime. A sync in this
/// process forgets them at once; one in another instance, after [`UNKNOWN_FOR`]. Without a
/// plan in the metadata a price no plan had is read every time (else the object would be
/// skipped for a stale reason). At most [`UNKNOWN_MAX`] are remembered.
#[derive(Default)]
pub(crate) struct PricePlans(Mutex<Known>);

/// How long a price found in no plan is not read again.
const UNKNOWN_FOR: Duration = Duration::from_secs(30);
/// How many prices found in no plan are remembered at most (all are forgotten past it).
const UNKNOWN_MAX: usize = 10_000;

#[derive(Default)]
struct Known {
    plans: HashMap<String, String>,
    /// Price → when it was found in no plan, and `stripe_ids::plan_objects_saved()` then.
    unknown: HashMap<String, (Instant, u64)>,
}

impl Known {
    fn unknown_still(&self, price: &str, saved: u64) -> bool {
        self.unknown
            .get(price)
            .is_some_and(|(at, seen)| *seen == saved && at.elapsed() < UNKNOWN_FOR)
    }
}

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
        let in_metadata = plan_in_metadata(catalog, metadata);
        let saved = stripe_ids::plan_objects_saved();
        let (mut plans, unread): (Vec<String>, Vec<&str>) = {
            let known = self.known();
            let mut plans = Vec::with_capacity(prices.len());
            let mut unread = Vec::new();
            for price in prices {
                match known.plans.get(*price) {
                    Some(plan) => plans.push(plan.clone()),
                    None if in_metadata.is_some() && known.unknown_still(price, saved) => {}
                    None => unread.push(*price),
                }
            }
            (plans, unread)
        };
        // The prices not known, in one query; what it finds is kept, and what it does not.
        if !unread.is_empty() {
            let found = stripe_ids::plans_of_prices(conn, &unread).await?;
            let mut known = self.known();
            for (price, plan) in found {
                known.unknown.remove(&price);
                known.plans.insert(price, plan.clone());
                plans.push(plan);
            }
            let now = Instant::now();
            for price in unread {
                if !known.plans.contains_key(price) {
                    if known.unknown.len() >= UNKNOWN_MAX {
                        known.unknown.clear();
                    }
                    known.unknown.insert(price.to_owned(), (now, saved));
                }
            }
        }
        Ok(plans
            .into_iter()
            .min()
            .and_then(|id| catalog.plan(&id))
            .or(in_metadata))
    }

    fn known(&self) -> MutexGuard<'_, Known> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
