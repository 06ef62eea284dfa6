//! Balances: what a customer may use of each feature, provisioned from their live plans,
//! consumed by `track`, read by `check`, reset by Stripe renewals or (for plans without a
//! subscription) by the clock, lazily when read.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use crate::access::HELD_SQL;
use crate::catalog::{Catalog, FeatureKind, Reset};

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
    // One statement: what no held plan grants goes, the rest is upserted (disjoint rows, so
    // the two parts cannot see each other's changes).
    let features: Vec<&str> = allowances.keys().copied().collect();
    let a: Vec<&Allowance> = allowances.values().collect();
    sqlx::query(
        "WITH gone AS (DELETE FROM balances WHERE customer_pk = $1 AND NOT (feature_id = ANY($2)))
         INSERT INTO balances (customer_pk, feature_id, included, unlimited, overage_allowed,
                               subscription_backed, reset, reset_plan_id, next_reset_at,
                               suspended)
         SELECT $1, * FROM UNNEST($2::text[], $3::bigint[], $4::bool[], $5::bool[], $6::bool[],
                                  $7::text[], $8::text[], $9::timestamptz[], $10::bool[])
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
                 THEN balances.next_reset_at ELSE EXCLUDED.next_reset_at END",
    )
    .bind(customer_pk)
    .bind(&features)
    .bind(a.iter().map(|a| a.included).collect::<Vec<_>>())
    .bind(a.iter().map(|a| a.unlimited).collect::<Vec<_>>())
    .bind(a.iter().map(|a| a.overage_allowed).collect::<Vec<_>>())
    .bind(a.iter().map(|a| a.subscription_backed).collect::<Vec<_>>())
    .bind(
        a.iter()
            .map(|a| a.reset.map(reset_name))
            .collect::<Vec<_>>(),
    )
    .bind(
        a.iter()
            .map(|a| a.reset_plan_id.clone())
            .collect::<Vec<_>>(),
    )
    .bind(a.iter().map(|a| a.next_reset_at).collect::<Vec<_>>())
    .bind(a.iter().map(|a| a.suspended).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
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

/// A renewal paid for the service period ending `period_end`: reset the allowance of the
/// subscription's features, once per period (a redelivered or older invoice changes nothing).
pub async fn reset_for_renewal(
    conn: &mut PgConnection,
    customer_pk: i64,
    subscription_id: &str,
    period_end: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let advanced: Option<bool> = sqlx::query_scalar(
        "INSERT INTO stripe_subscriptions AS g (id, customer_pk, reset_period_end)
         VALUES ($1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET reset_period_end = EXCLUDED.reset_period_end
             WHERE g.reset_period_end IS NULL OR g.reset_period_end < EXCLUDED.reset_period_end
         RETURNING true",
    )
    .bind(subscription_id)
    .bind(customer_pk)
    .bind(period_end)
    .fetch_optional(&mut *conn)
    .await?;
    if advanced.is_none() {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE balances SET used = 0, adjustment = 0, next_reset_at = greatest(next_reset_at, $2)
         WHERE customer_pk = $1 AND subscription_backed AND reset <> 'never'",
    )
    .bind(customer_pk)
    .bind(period_end)
    .execute(conn)
    .await?;
    Ok(true)
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Balance {
    pub feature_id: String,
    pub included: i64,
    pub used: i64,
    pub unlimited: bool,
    pub overage_allowed: bool,
    pub next_reset_at: Option<DateTime<Utc>>,
    /// Granted only by suspended plans: usage is kept, nothing is allowed.
    pub suspended: bool,
    /// What balance edits add to `included` until the next reset (negative: deducted).
    pub adjustment: i64,
}

impl Balance {
    /// `included + adjustment - used`, saturating: a balance never wraps around to a huge
    /// credit.
    pub fn remaining(&self) -> i64 {
        self.included
            .saturating_add(self.adjustment)
            .saturating_sub(self.used)
    }

    /// May the customer use `required` more?
    pub fn allows(&self, required: i64) -> bool {
        !self.suspended && (self.unlimited || self.overage_allowed || self.remaining() >= required)
    }
}

/// The balance of one feature (after any reset that fell due), locked for the transaction.
pub async fn current(
    conn: &mut PgConnection,
    customer_pk: i64,
    feature_id: &str,
) -> Result<Option<Balance>, sqlx::Error> {
    reset_due(conn, customer_pk).await?;
    sqlx::query_as(
        "SELECT feature_id, included, used, unlimited, overage_allowed, next_reset_at, suspended,
                adjustment
         FROM balances WHERE customer_pk = $1 AND feature_id = $2 FOR UPDATE",
    )
    .bind(customer_pk)
    .bind(feature_id)
    .fetch_optional(conn)
    .await
}

/// Records usage once per idempotency key; returns the balance after it and whether this
/// key was seen before.
pub async fn track(
    conn: &mut PgConnection,
    customer_pk: i64,
    feature_id: &str,
    value: i64,
    idempotency_key: Option<&str>,
) -> Result<(Option<Balance>, bool), sqlx::Error> {
    let recorded = sqlx::query(
        "INSERT INTO usage_events (customer_pk, feature_id, value, idempotency_key)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (customer_pk, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING",
    )
    .bind(customer_pk)
    .bind(feature_id)
    .bind(value)
    .bind(idempotency_key)
    .execute(&mut *conn)
    .await?;
    let duplicate = recorded.rows_affected() == 0;
    if !duplicate {
        reset_due(conn, customer_pk).await?;
        // Summed as numeric and capped at the bigint range: usage piling up past it must
        // neither fail every later track nor wrap.
        sqlx::query(
            "UPDATE balances
             SET used = least(greatest(used::numeric + $3, 0), 9223372036854775807)::bigint
             WHERE customer_pk = $1 AND feature_id = $2",
        )
        .bind(customer_pk)
        .bind(feature_id)
        .bind(value)
        .execute(&mut *conn)
        .await?;
    }
    Ok((current(conn, customer_pk, feature_id).await?, duplicate))
}

/// Clock resets for balances not backed by a Stripe subscription.
async fn reset_due(conn: &mut PgConnection, customer_pk: i64) -> Result<(), sqlx::Error> {
    let due: Vec<(String, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT feature_id, reset, next_reset_at FROM balances
         WHERE customer_pk = $1 AND NOT subscription_backed
           AND next_reset_at <= now() AND reset IS NOT NULL",
    )
    .bind(customer_pk)
    .fetch_all(&mut *conn)
    .await?;
    let now = Utc::now();
    for (feature, reset, mut next) in due {
        let Some(reset) = parse_reset(&reset) else {
            continue;
        };
        while next <= now {
            match reset.next_after(next) {
                Some(n) => next = n,
                None => break,
            }
        }
        sqlx::query(
            "UPDATE balances SET used = 0, adjustment = 0, next_reset_at = $3
             WHERE customer_pk = $1 AND feature_id = $2",
        )
        .bind(customer_pk)
        .bind(feature)
        .bind(next)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

fn reset_name(reset: Reset) -> &'static str {
    match reset {
        Reset::Day => "day",
        Reset::Week => "week",
        Reset::Month => "month",
        Reset::Year => "year",
        Reset::Never => "never",
    }
}

fn parse_reset(name: &str) -> Option<Reset> {
    Some(match name {
        "day" => Reset::Day,
        "week" => Reset::Week,
        "month" => Reset::Month,
        "year" => Reset::Year,
        _ => return None,
    })
}

/// Every balance of a customer, by feature (as stored: a clock reset falls due on read).
pub async fn all(conn: &mut PgConnection, customer_pk: i64) -> Result<Vec<Balance>, sqlx::Error> {
    sqlx::query_as(
        "SELECT feature_id, included, used, unlimited, overage_allowed, next_reset_at, suspended,
                adjustment
         FROM balances WHERE customer_pk = $1 ORDER BY feature_id",
    )
    .bind(customer_pk)
    .fetch_all(conn)
    .await
}

/// A balance edit's operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditOp {
    /// Adds `amount` to what is left.
    Grant,
    /// Makes what is left exactly `amount`.
    Set,
    /// Takes `amount` from what is left.
    Deduct,
}

impl EditOp {
    fn name(self) -> &'static str {
        match self {
            Self::Grant => "grant",
            Self::Set => "set",
            Self::Deduct => "deduct",
        }
    }
}

/// A balance edit as asked.
#[derive(Debug, Clone)]
pub struct Edit<'a> {
    pub feature_id: &'a str,
    pub op: EditOp,
    pub amount: i64,
    pub reason: Option<&'a str>,
    /// Who asked: the API token's label, or `cli`.
    pub actor: &'a str,
    pub idempotency_key: Option<&'a str>,
}

/// What [`edit`] did.
#[derive(Debug, Clone)]
pub enum Edited {
    /// The balance after the edit; `duplicate` when its idempotency key was applied before
    /// (nothing changed now).
    Done { balance: Balance, duplicate: bool },
    /// The customer has no balance of the feature (no plan of theirs grants it).
    NoBalance,
    /// The feature is unlimited for the customer: there is nothing to edit.
    Unlimited,
    /// The idempotency key was used for another edit; `differs` names what (nothing
    /// changed).
    KeyReused { differs: &'static str },
}

/// Applies a balance edit, once per idempotency key; it lasts until the feature's next reset.
/// The balance row is locked, so concurrent edits apply one after the other; a key is
/// locked (transaction advisory lock) before it is looked up, so two requests with one key
/// (for two features, say) also run one after the other and the second sees the first. A
/// key seen before answers `duplicate` for the same edit, [`Edited::KeyReused`] for another.
pub async fn edit(
    conn: &mut PgConnection,
    customer_pk: i64,
    e: &Edit<'_>,
) -> Result<Edited, sqlx::Error> {
    if let Some(key) = e.idempotency_key {
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtextextended('balance_edits:' || $1::text || ':' || $2, 0))",
        )
        .bind(customer_pk)
        .bind(key)
        .execute(&mut *conn)
        .await?;
        let seen: Option<(String, String, i64, Option<String>)> = sqlx::query_as(
            "SELECT feature_id, op, amount, reason FROM balance_edits
              WHERE customer_pk = $1 AND idempotency_key = $2",
        )
        .bind(customer_pk)
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some((feature_id, op, amount, reason)) = seen {
            let differs = if feature_id != e.feature_id {
                "feature_id"
            } else if op != e.op.name() {
                "op"
            } else if amount != e.amount {
                "amount"
            } else if reason.is_some() && e.reason.is_some() && reason.as_deref() != e.reason {
                // A retry that leaves the reason out is the same edit; another reason is not.
                "reason"
            } else {
                let Some(balance) = current(conn, customer_pk, e.feature_id).await? else {
                    return Ok(Edited::NoBalance);
                };
                return Ok(Edited::Done {
                    balance,
                    duplicate: true,
                });
            };
            return Ok(Edited::KeyReused { differs });
        }
    }
    let Some(balance) = current(conn, customer_pk, e.feature_id).await? else {
        return Ok(Edited::NoBalance);
    };
    if balance.unlimited {
        return Ok(Edited::Unlimited);
    }
    let adjustment = match e.op {
        EditOp::Grant => balance.adjustment.saturating_add(e.amount),
        EditOp::Deduct => balance.adjustment.saturating_sub(e.amount),
        // What is left becomes `amount`: included + adjustment - used = amount.
        EditOp::Set => e
            .amount
            .saturating_add(balance.used)
            .saturating_sub(balance.included),
    };
    let balance = Balance {
        adjustment,
        ..balance
    };
    sqlx::query("UPDATE balances SET adjustment = $3 WHERE customer_pk = $1 AND feature_id = $2")
        .bind(customer_pk)
        .bind(e.feature_id)
        .bind(adjustment)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO balance_edits (customer_pk, feature_id, op, amount, reason, actor,
                                    idempotency_key, balance_after)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(customer_pk)
    .bind(e.feature_id)
    .bind(e.op.name())
    .bind(e.amount)
    .bind(e.reason)
    .bind(e.actor)
    .bind(e.idempotency_key)
    .bind(balance.remaining())
    .execute(&mut *conn)
    .await?;
    Ok(Edited::Done {
        balance,
        duplicate: false,
    })
}

/// How [`usage_totals`] groups usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Hour,
    Day,
}

/// Usage of `feature_id` recorded in `[from, to)`, summed per hour or day (UTC), oldest first;
/// buckets without usage are left out.
pub async fn usage_totals(
    conn: &mut PgConnection,
    customer_pk: i64,
    feature_id: &str,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    bucket: Bucket,
) -> Result<Vec<(DateTime<Utc>, i64)>, sqlx::Error> {
    let unit = match bucket {
        Bucket::Hour => "hour",
        Bucket::Day => "day",
    };
    sqlx::query_as(
        "SELECT date_trunc($5, recorded_at, 'UTC') AS bucket,
                least(sum(value), 9223372036854775807)::bigint AS total
         FROM usage_events
         WHERE customer_pk = $1 AND feature_id = $2 AND recorded_at >= $3 AND recorded_at < $4
         GROUP BY 1 ORDER BY 1",
    )
    .bind(customer_pk)
    .bind(feature_id)
    .bind(from)
    .bind(to)
    .bind(unit)
    .fetch_all(conn)
    .await
}

/// One usage record as `track` stored it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UsageRecord {
    pub id: i64,
    pub feature_id: String,
    pub value: i64,
    pub idempotency_key: Option<String>,
    pub recorded_at: DateTime<Utc>,
}

/// The raw usage records of `feature_id` in `[from, to)`, oldest first, at most `limit`.
pub async fn usage_records(
    conn: &mut PgConnection,
    customer_pk: i64,
    feature_id: &str,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    limit: i64,
) -> Result<Vec<UsageRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, feature_id, value, idempotency_key, recorded_at
         FROM usage_events
         WHERE customer_pk = $1 AND feature_id = $2 AND recorded_at >= $3 AND recorded_at < $4
         ORDER BY recorded_at, id LIMIT $5",
    )
    .bind(customer_pk)
    .bind(feature_id)
    .bind(from)
    .bind(to)
    .bind(limit)
    .fetch_all(conn)
    .await
}
