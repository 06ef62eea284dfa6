//! Provisioning: a customer's balances recomputed from the plans they hold.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::reset::reset_name;
use crate::access::HELD_SQL;
use crate::catalog::{Catalog, FeatureKind, Reset};
use crate::store::rows::Statement;

/// A held plan of a customer (live or suspended), as provisioning needs it.
#[derive(sqlx::FromRow)]
pub struct HeldPlan {
    pub plan_id: String,
    pub status: String,
    pub backed: bool,
    pub period_end: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
    /// Units of the plan (seats): what `per_unit` items scale by.
    pub quantity: i32,
}

#[derive(Debug, Default)]
struct Allowance {
    included: i64,
    unlimited: bool,
    overage_allowed: bool,
    subscription_backed: bool,
    reset: Option<Reset>,
    reset_plan_id: Option<String>,
    next_reset_at: Option<DateTime<Utc>>,
    /// Granted only by suspended plans: kept, but `check` refuses it.
    suspended: bool,
}

/// Recomputes every balance of a customer from their held plans. Live plans grant; a
/// feature that only suspended plans grant (paused, or past due beyond
/// `billing.past_due_access`) keeps its balance, marked suspended. `used` is kept; a feature
/// no held plan grants any more is removed. A clock reset already stepped forward (lazily,
/// on read) by the same plan is kept.
pub async fn provision(
    conn: &mut PgConnection,
    catalog: &Catalog,
    customer_pk: i64,
) -> Result<(), sqlx::Error> {
    let held: Vec<HeldPlan> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT plan_id, status, stripe_subscription_id IS NOT NULL AS backed,
                current_period_end AS period_end, started_at, quantity
         FROM customer_plans
         WHERE customer_pk = $1 AND status IN {HELD_SQL}
         ORDER BY add_on, id"
    )))
    .bind(customer_pk)
    .fetch_all(&mut *conn)
    .await?;
    provision_from(conn, catalog, customer_pk, &held).await
}

/// [`provision`] from the customer's held plans as read already (in the order add-ons last,
/// then by row id), by whoever wrote them (`sync_subscription_state`, migration 28).
pub async fn provision_from(
    conn: &mut PgConnection,
    catalog: &Catalog,
    customer_pk: i64,
    held: &[HeldPlan],
) -> Result<(), sqlx::Error> {
    provision_many(conn, catalog, &[(customer_pk, held)]).await
}

/// A customer's balance row as provisioning writes it (all but `used` and `adjustment`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ProvisionedRow {
    pub feature_id: String,
    pub included: i64,
    pub unlimited: bool,
    pub overage_allowed: bool,
    pub subscription_backed: bool,
    pub reset: Option<String>,
    pub reset_plan_id: Option<String>,
    pub next_reset_at: Option<DateTime<Utc>>,
    pub suspended: bool,
}

impl ProvisionedRow {
    /// Whether provisioning `a` over this row writes nothing: the statement's own test
    /// (the columns it sets, and `next_reset_at` as its `CASE` keeps or replaces it).
    fn stays_with(&self, a: &Allowance) -> bool {
        let kept_reset = !a.subscription_backed
            && self.reset_plan_id == a.reset_plan_id
            && matches!((self.next_reset_at, a.next_reset_at), (Some(old), Some(new)) if old > new);
        let next_reset_at = if kept_reset {
            self.next_reset_at
        } else {
            a.next_reset_at
        };
        self.included == a.included
            && self.unlimited == a.unlimited
            && self.overage_allowed == a.overage_allowed
            && self.subscription_backed == a.subscription_backed
            && self.reset.as_deref() == a.reset.map(reset_name)
            && self.reset_plan_id == a.reset_plan_id
            && self.suspended == a.suspended
            && self.next_reset_at == next_reset_at
    }
}

/// [`provision_from`], unless it would write nothing: `current` is the customer's balance
/// rows as read in this transaction after `held` was (`sync_subscription_event`). Most of a
/// subscription's states change no allowance (its first incomplete state, past_due while
/// access is kept, set to cancel); those take no statement. True when it provisioned.
pub async fn provision_unless_same(
    conn: &mut PgConnection,
    catalog: &Catalog,
    customer_pk: i64,
    held: &[HeldPlan],
    current: &[ProvisionedRow],
) -> Result<bool, sqlx::Error> {
    let allowances = allowances(catalog, held);
    let same = current.len() == allowances.len()
        && current.iter().all(|row| {
            allowances
                .get(row.feature_id.as_str())
                .is_some_and(|a| row.stays_with(a))
        });
    if same {
        return Ok(false);
    }
    write(conn, vec![(customer_pk, allowances)]).await?;
    Ok(true)
}

/// [`provision_from`] for several customers (each once) in one statement.
pub async fn provision_many(
    conn: &mut PgConnection,
    catalog: &Catalog,
    customers: &[(i64, &[HeldPlan])],
) -> Result<(), sqlx::Error> {
    let granted: Vec<(i64, BTreeMap<&str, Allowance>)> = customers
        .iter()
        .map(|(customer_pk, held)| (*customer_pk, allowances(catalog, held)))
        .collect();
    write(conn, granted).await
}

/// Writes what each customer's held plans grant (`allowances`), in one statement.
async fn write(
    conn: &mut PgConnection,
    granted: Vec<(i64, BTreeMap<&str, Allowance>)>,
) -> Result<(), sqlx::Error> {
    let customer_pks: Vec<i64> = granted.iter().map(|(pk, _)| *pk).collect();
    let mut rows = Rows::default();
    for (customer_pk, allowances) in granted {
        for (feature, a) in allowances {
            rows.push(customer_pk, feature, a);
        }
    }
    // One statement: what no held plan grants goes, the rest is upserted (disjoint rows, so
    // the two parts cannot see each other's changes). One customer (the one-at-a-time path)
    // is named by the first element, so the statement is planned once for the session.
    sqlx::query(PROVISION.get(customer_pks.len() != 1))
        .bind(&customer_pks)
        .bind(&rows.customer_pk)
        .bind(&rows.feature_id)
        .bind(&rows.included)
        .bind(&rows.unlimited)
        .bind(&rows.overage_allowed)
        .bind(&rows.subscription_backed)
        .bind(&rows.reset)
        .bind(&rows.reset_plan_id)
        .bind(&rows.next_reset_at)
        .bind(&rows.suspended)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The provisioning statement (`write`): the customers whose balances it writes are `$1`,
/// many (`= ANY`) or one (its first element: with `= ANY` Postgres expects ten customers, so a
/// generic plan never won and the one-customer calls were planned every time, 0.1-0.2 ms each).
static PROVISION: Statement = Statement::new(|many| {
    let customers = if many {
        "b.customer_pk = ANY($1)"
    } else {
        "b.customer_pk = ($1::bigint[])[1]"
    };
    format!(
        "WITH granted AS (
             SELECT * FROM UNNEST($2::bigint[], $3::text[], $4::bigint[], $5::bool[],
                                  $6::bool[], $7::bool[], $8::text[], $9::text[],
                                  $10::timestamptz[], $11::bool[])
                 AS g (customer_pk, feature_id, included, unlimited, overage_allowed,
                       subscription_backed, reset, reset_plan_id, next_reset_at, suspended)
         ), gone AS (
             DELETE FROM balances b
             WHERE {customers}
               AND NOT EXISTS (SELECT 1 FROM granted g
                               WHERE g.customer_pk = b.customer_pk
                                 AND g.feature_id = b.feature_id))
         INSERT INTO balances (customer_pk, feature_id, included, unlimited, overage_allowed,
                               subscription_backed, reset, reset_plan_id, next_reset_at,
                               suspended)
         SELECT * FROM granted
         ON CONFLICT (customer_pk, feature_id) DO UPDATE
         SET included = EXCLUDED.included, unlimited = EXCLUDED.unlimited,
             overage_allowed = EXCLUDED.overage_allowed,
             subscription_backed = EXCLUDED.subscription_backed, reset = EXCLUDED.reset,
             reset_plan_id = EXCLUDED.reset_plan_id, suspended = EXCLUDED.suspended,
             next_reset_at = CASE
                 WHEN NOT EXCLUDED.subscription_backed
                      AND balances.reset_plan_id IS NOT DISTINCT FROM EXCLUDED.reset_plan_id
                      AND balances.next_reset_at > EXCLUDED.next_reset_at
                 THEN balances.next_reset_at ELSE EXCLUDED.next_reset_at END
         -- Most events change no allowance: a row that would stay the same is not written.
         -- (ProvisionedRow::stays_with restates this test, to skip the whole statement.)
         WHERE (balances.included, balances.unlimited, balances.overage_allowed,
                balances.subscription_backed, balances.reset, balances.reset_plan_id,
                balances.suspended)
               IS DISTINCT FROM
               (EXCLUDED.included, EXCLUDED.unlimited, EXCLUDED.overage_allowed,
                EXCLUDED.subscription_backed, EXCLUDED.reset, EXCLUDED.reset_plan_id,
                EXCLUDED.suspended)
            OR balances.next_reset_at IS DISTINCT FROM CASE
                 WHEN NOT EXCLUDED.subscription_backed
                      AND balances.reset_plan_id IS NOT DISTINCT FROM EXCLUDED.reset_plan_id
                      AND balances.next_reset_at > EXCLUDED.next_reset_at
                 THEN balances.next_reset_at ELSE EXCLUDED.next_reset_at END"
    )
});

/// What a customer's held plans grant, by feature.
fn allowances<'c>(catalog: &'c Catalog, held: &[HeldPlan]) -> BTreeMap<&'c str, Allowance> {
    let (live, suspended): (Vec<&HeldPlan>, Vec<&HeldPlan>) =
        held.iter().partition(|p| catalog.access.is_live(&p.status));
    let mut allowances: BTreeMap<&str, Allowance> = BTreeMap::new();
    grant(catalog, &live, &mut allowances);
    // What only suspended plans grant stays, refused, so nothing is lost when they return.
    let mut kept: BTreeMap<&str, Allowance> = BTreeMap::new();
    grant(catalog, &suspended, &mut kept);
    for (feature, mut a) in kept {
        if !allowances.contains_key(feature) {
            a.suspended = true;
            allowances.insert(feature, a);
        }
    }
    allowances
}

/// Balance rows as the provisioning statement binds them, a column each.
#[derive(Default)]
struct Rows<'c> {
    customer_pk: Vec<i64>,
    feature_id: Vec<&'c str>,
    included: Vec<i64>,
    unlimited: Vec<bool>,
    overage_allowed: Vec<bool>,
    subscription_backed: Vec<bool>,
    reset: Vec<Option<&'static str>>,
    reset_plan_id: Vec<Option<String>>,
    next_reset_at: Vec<Option<DateTime<Utc>>>,
    suspended: Vec<bool>,
}

impl<'c> Rows<'c> {
    fn push(&mut self, customer_pk: i64, feature: &'c str, a: Allowance) {
        self.customer_pk.push(customer_pk);
        self.feature_id.push(feature);
        self.included.push(a.included);
        self.unlimited.push(a.unlimited);
        self.overage_allowed.push(a.overage_allowed);
        self.subscription_backed.push(a.subscription_backed);
        self.reset.push(a.reset.map(reset_name));
        self.reset_plan_id.push(a.reset_plan_id);
        self.next_reset_at.push(a.next_reset_at);
        self.suspended.push(a.suspended);
    }
}

/// Provisions again every customer with a `past_due` or `unpaid` plan, so a changed
/// `billing.past_due_access` applies to them at start; returns how many there were.
pub async fn provision_past_due(pool: &PgPool, catalog: &Catalog) -> Result<usize, sqlx::Error> {
    let customers: Vec<i64> = sqlx::query_scalar(
        "SELECT DISTINCT customer_pk FROM customer_plans WHERE status IN ('past_due', 'unpaid')",
    )
    .fetch_all(pool)
    .await?;
    for &pk in &customers {
        let mut tx = pool.begin().await?;
        provision(&mut tx, catalog, pk).await?;
        tx.commit().await?;
    }
    Ok(customers.len())
}

/// Adds what `plans` grant to `allowances` (the first plan granting a metered feature sets
/// its reset).
fn grant<'c>(
    catalog: &'c Catalog,
    plans: &[&HeldPlan],
    allowances: &mut BTreeMap<&'c str, Allowance>,
) {
    for held in plans {
        let Some(plan) = catalog.plan(&held.plan_id) else {
            continue; // a plan removed from the catalog grants nothing
        };
        for item in &plan.items {
            let Some(feature) = catalog.feature(&item.feature) else {
                continue;
            };
            let a = allowances.entry(feature.id.as_str()).or_default();
            match feature.kind {
                FeatureKind::Boolean => a.unlimited = true,
                FeatureKind::Metered => {
                    let units = if item.per_unit {
                        i64::from(held.quantity.max(0))
                    } else {
                        1
                    };
                    let included = item.included.unwrap_or(0).saturating_mul(units);
                    a.included = a.included.saturating_add(included);
                    a.overage_allowed |= item.usage_price.is_some();
                    if a.reset.is_none() {
                        let reset = item.reset.unwrap_or(Reset::Never);
                        a.reset = Some(reset);
                        a.reset_plan_id = Some(plan.id.clone());
                        a.subscription_backed = held.backed;
                        a.next_reset_at = match (reset, held.backed) {
                            (Reset::Never, _) => None,
                            (_, true) => held.period_end,
                            (_, false) => reset.next_after(held.started_at),
                        };
                    }
                }
            }
        }
    }
}
