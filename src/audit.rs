//! The continuous audit against Stripe: read a sample of our linked customers from Stripe
//! (their subscriptions, `status=all`, and the customer's name and email), compare what
//! matters with the store, count, log, record and repair each difference.
//!
//! - **Who**: [`Scope::All`], or [`Scope::Changed`]: every linked customer whose row or plans
//!   (or entities' plans) changed, or whose Stripe customer had events received, since the
//!   previous run's `next_since` (the last 24 hours when there is none), plus `sample` others
//!   at random. A customer with queued work (events or jobs still pending) is skipped as
//!   *busy*: the store is about to change; the run's `next_since` then goes back to that
//!   work's age, so the next run takes the customer again.
//! - **What**: per subscription that maps to a catalog plan, our plan for it (`plan`), its
//!   `status`, `quantity`, `cancel_at_period_end`, `cancel_at`, `trial_end` (the last four
//!   not for a subscription that ended on both sides); a subscription held in our store that
//!   Stripe does not list for the customer (`subscription`); the customer's `name` and
//!   `email`. A state of ours newer than the read (a webhook applied meanwhile, its
//!   `created` after the second the read started) is not a difference.
//! - **Repair**, in one transaction per customer: a subscription that differs is applied as
//!   read, through the path reads take ([`apply`], observed = the second the read started,
//!   never later, so an event of that second ties and a later one applies); a name or email
//!   that differs is copied from Stripe's as `customer.updated` does
//!   ([`customers::sync_from_stripe`]), unless a change of ours is on its way there (the
//!   customer is busy then). `subscription` is reported only. What is compared again after
//!   the repair decides `repaired`. Each customer with a difference gets an `audit.drift`
//!   timeline entry (source `audit:<run>`); the run is stored (migration 26) with its counts,
//!   which `/metrics` sums into `reconciler_drift_total{field}`.
//! - `dry_run`: compares only: no repair, no timeline entry, no stored run, no metric.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::access::our_status;
use crate::billing::StripeContext;
use crate::catalog::Catalog;
use crate::store::audits::{self, Counts, Linked};
use crate::store::{activity, customers};
use crate::stripe::client::StripeApi;
use crate::stripe::objects::{Subscription, timestamp};
use crate::sync::subscription::{apply, plan_of};

/// How far back the first "changed since" run looks when no run was stored before.
const FIRST_LOOKBACK_SECS: i64 = 86_400;

/// Which customers a run audits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Those changed since `since` (`None`: since the previous run), plus `sample` at random.
    Changed {
        since: Option<DateTime<Utc>>,
        sample: i64,
    },
    /// Every customer linked to Stripe.
    All,
}

/// What a run found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The stored run (`None` for a dry run).
    pub audit_id: Option<i64>,
    pub scope: &'static str,
    pub dry_run: bool,
    pub started_at: DateTime<Utc>,
    /// Customers compared.
    pub checked: usize,
    /// Customers skipped because work of theirs was still queued (our ids).
    pub busy: Vec<String>,
    /// Customers with at least one difference.
    pub drift: Vec<CustomerDrift>,
}

impl Report {
    pub fn differences(&self) -> usize {
        self.drift.iter().map(|c| c.differences.len()).sum()
    }
}

/// One customer's differences.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerDrift {
    /// Our id (`pk:N` for a customer without one).
    pub customer: String,
    pub stripe_id: String,
    pub differences: Vec<Difference>,
    /// Whether the store equals Stripe after the repair (false on a dry run).
    pub repaired: bool,
}

/// One field that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub field: &'static str,
    /// The subscription, for a subscription's field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    pub ours: String,
    pub stripe: String,
}

/// Audits the customers of `scope`; see the module's documentation.
pub async fn run(
    stripe: &StripeContext,
    pool: &PgPool,
    scope: Scope,
    dry_run: bool,
) -> anyhow::Result<Report> {
    let scope_name = match scope {
        Scope::All => "all",
        Scope::Changed { .. } => "changed",
    };
    let (audit_id, started_at) = if dry_run {
        (None, Utc::now())
    } else {
        let (id, at) = audits::start(pool, scope_name).await?;
        (Some(id), at)
    };
    let mut conn = pool.acquire().await?;
    let targets = match scope {
        Scope::All => audits::all_linked(&mut conn).await?,
        Scope::Changed { since, sample } => {
            let since = match since {
                Some(since) => since,
                None => audits::next_since(&mut conn)
                    .await?
                    .unwrap_or_else(|| started_at - chrono::Duration::seconds(FIRST_LOOKBACK_SECS)),
            };
            audits::changed_and_sample(&mut conn, since, sample.max(0)).await?
        }
    };
    drop(conn);
    let mut report = Report {
        audit_id,
        scope: scope_name,
        dry_run,
        started_at,
        checked: 0,
        busy: Vec::new(),
        drift: Vec::new(),
    };
    let mut counts = Counts::default();
    let mut next_since = started_at;
    for customer in &targets {
        let label = customer
            .id
            .clone()
            .unwrap_or_else(|| format!("pk:{}", customer.pk));
        let queued = audits::queued_since(
            &mut *pool.acquire().await?,
            customer.pk,
            &customer.stripe_id,
        )
        .await?;
        if let Some(queued) = queued {
            next_since = next_since.min(queued);
            report.busy.push(label);
            continue;
        }
        let found = audit_customer(stripe, pool, customer, &label, audit_id).await?;
        report.checked += 1;
        if let Some(found) = found {
            for d in &found.differences {
                *counts.drift.entry(d.field.to_owned()).or_default() += 1;
            }
            counts.drifted += 1;
            counts.repaired += i32::from(found.repaired);
            report.drift.push(found);
        }
    }
    if let Some(id) = audit_id {
        counts.checked = report.checked as i32;
        counts.busy = report.busy.len() as i32;
        audits::finish(pool, id, next_since, &counts).await?;
    }
    Ok(report)
}

/// A customer's subscriptions as Stripe has them now (any status).
pub(crate) async fn read_subscriptions(
    api: &StripeApi,
    stripe_id: &str,
) -> anyhow::Result<Vec<Subscription>> {
    Ok(api
        .list_subscriptions(stripe_id)
        .await?
        .iter()
        .map(Subscription::from)
        .collect())
}

/// What Stripe has for one customer, read from the second `observed` on.
struct Read {
    observed: i64,
    name: Option<String>,
    email: Option<String>,
    subscriptions: Vec<Subscription>,
}

/// Reads one customer from Stripe, compares, and (with `audit_id`) repairs and records.
async fn audit_customer(
    stripe: &StripeContext,
    pool: &PgPool,
    customer: &Linked,
    label: &str,
    audit_id: Option<i64>,
) -> anyhow::Result<Option<CustomerDrift>> {
    // Stamped with the second the read started: never later than what it saw.
    let observed = Utc::now().timestamp();
    let theirs = match stripe.api.retrieve_customer(&customer.stripe_id).await {
        Ok(theirs) => theirs,
        Err(error) if error.status == Some(404) => {
            // Deleted in Stripe: `customer.deleted` unlinks it; report, repair nothing.
            let differences = vec![Difference {
                field: "stripe_customer",
                subscription_id: None,
                ours: customer.stripe_id.clone(),
                stripe: "deleted".into(),
            }];
            return Ok(Some(CustomerDrift {
                customer: label.to_owned(),
                stripe_id: customer.stripe_id.clone(),
                differences,
                repaired: false,
            }));
        }
        Err(error) => return Err(anyhow::anyhow!("{label}: {error}")),
    };
    let read = Read {
        observed,
        name: theirs.name,
        email: theirs.email,
        subscriptions: read_subscriptions(&stripe.api, &customer.stripe_id).await?,
    };
    let catalog = &stripe.catalog;
    let mut tx = pool.begin().await?;
    let differences = compare(&mut tx, catalog, customer.pk, &read).await?;
    if differences.is_empty() {
        return Ok(None);
    }
    let fields: Vec<&str> = differences.iter().map(|d| d.field).collect();
    tracing::warn!(customer = %label, stripe_id = %customer.stripe_id, ?fields, ?differences,
                   repair = audit_id.is_some(), "audit: the store differs from Stripe");
    let Some(audit_id) = audit_id else {
        tx.rollback().await?;
        return Ok(Some(CustomerDrift {
            customer: label.to_owned(),
            stripe_id: customer.stripe_id.clone(),
            differences,
            repaired: false,
        }));
    };
    activity::set_source(&mut tx, &format!("audit:{audit_id}"), None).await?;
    for sub in &read.subscriptions {
        let differs = differences
            .iter()
            .any(|d| d.subscription_id.as_deref() == Some(sub.id.as_str()));
        if differs {
            apply(&mut tx, catalog, sub, false, read.observed)
                .await
                .map_err(|e| anyhow::anyhow!("{label}: {e}"))?;
        }
    }
    if differences
        .iter()
        .any(|d| matches!(d.field, "name" | "email"))
    {
        customers::sync_from_stripe(
            &mut tx,
            customer.pk,
            read.name.as_deref(),
            read.email.as_deref(),
            read.observed,
            // A read, made while nothing of ours was queued for the customer (busy ones are
            // skipped): copied also over a change of ours from the same second.
            true,
            false,
        )
        .await?;
    }
    let left = compare(&mut tx, catalog, customer.pk, &read).await?;
    let repaired = left.is_empty();
    let detail = serde_json::json!({
        "audit_id": audit_id,
        "fields": fields,
        "differences": differences,
        "repaired": repaired,
    });
    activity::record(&mut tx, customer.pk, "audit.drift", detail).await?;
    tx.commit().await?;
    if !repaired {
        tracing::warn!(customer = %label, left = ?left, "audit: not repaired");
    }
    Ok(Some(CustomerDrift {
        customer: label.to_owned(),
        stripe_id: customer.stripe_id.clone(),
        differences,
        repaired,
    }))
}

/// The differences between what Stripe has (`read`) and the store.
async fn compare(
    conn: &mut PgConnection,
    catalog: &Catalog,
    customer_pk: i64,
    read: &Read,
) -> anyhow::Result<Vec<Difference>> {
    let mut found = Vec::new();
    for sub in &read.subscriptions {
        let Some(plan) = plan_of(conn, catalog, sub).await? else {
            continue; // not a plan of ours: the applier skips it too
        };
        let rows = audits::subscription_rows(conn, &sub.id).await?;
        if rows
            .iter()
            .any(|r| r.source_created.is_some_and(|c| c > read.observed))
        {
            continue; // we hold a state newer than this read
        }
        let theirs_status = our_status(&sub.status);
        let diff = |field, ours: String, stripe: String| Difference {
            field,
            subscription_id: Some(sub.id.clone()),
            ours,
            stripe,
        };
        // A downgrade scheduled for the period end: the subscription bills the new price
        // already, while our plan stays the old one until then.
        let scheduled = rows
            .iter()
            .any(|r| r.plan_id == plan.id && r.status == "scheduled");
        let current = rows
            .iter()
            .find(|r| r.plan_id == plan.id && r.status != "scheduled")
            .or_else(|| {
                rows.iter()
                    .find(|r| scheduled && r.status != "scheduled" && r.status != "expired")
            });
        let Some(row) = current else {
            if theirs_status != "expired" {
                found.push(diff(
                    "plan",
                    "(none)".into(),
                    format!("{} {theirs_status}", plan.id),
                ));
            }
            continue;
        };
        if row.plan_id != plan.id && !scheduled {
            found.push(diff("plan", row.plan_id.clone(), plan.id.clone()));
        }
        if row.status != theirs_status {
            found.push(diff("status", row.status.clone(), theirs_status.into()));
        }
        if row.status == "expired" && theirs_status == "expired" {
            continue; // ended on both sides: the rest no longer matters
        }
        if row.quantity != sub.quantity() {
            found.push(diff(
                "quantity",
                row.quantity.to_string(),
                sub.quantity().to_string(),
            ));
        }
        if row.cancel_at_period_end != sub.cancel_at_period_end {
            found.push(diff(
                "cancel_at_period_end",
                row.cancel_at_period_end.to_string(),
                sub.cancel_at_period_end.to_string(),
            ));
        }
        let cancel_at = sub.cancel_at.and_then(timestamp);
        if row.cancel_at != cancel_at {
            found.push(diff("cancel_at", show(row.cancel_at), show(cancel_at)));
        }
        let trial_end = sub.trial_end.and_then(timestamp);
        if row.trial_end != trial_end {
            found.push(diff("trial_end", show(row.trial_end), show(trial_end)));
        }
    }
    for (id, plan_id, status) in audits::held_subscriptions(conn, customer_pk).await? {
        if !read.subscriptions.iter().any(|s| s.id == id) {
            found.push(Difference {
                field: "subscription",
                subscription_id: Some(id),
                ours: format!("{plan_id} {status}"),
                stripe: "(not listed for this customer)".into(),
            });
        }
    }
    if let Some(ours) = audits::contact(conn, customer_pk).await?
        && ours.stripe_synced_created <= read.observed
    {
        // As `customer.updated` copies them: a name cut to our bound; an email too long to
        // be an address is not copied, so not compared.
        let name =
            read.name
                .as_deref()
                .map(|n| match n.char_indices().nth(customers::MAX_NAME_CHARS) {
                    Some((cut, _)) => &n[..cut],
                    None => n,
                });
        if ours.name.as_deref() != name {
            found.push(Difference {
                field: "name",
                subscription_id: None,
                ours: shown(ours.name.as_deref()),
                stripe: shown(name),
            });
        }
        let email = read.email.as_deref();
        let fits = email.is_none_or(|e| e.chars().count() <= customers::MAX_EMAIL_CHARS);
        if fits && ours.email.as_deref() != email {
            found.push(Difference {
                field: "email",
                subscription_id: None,
                ours: shown(ours.email.as_deref()),
                stripe: shown(email),
            });
        }
    }
    Ok(found)
}

fn show(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(
        || "(none)".to_owned(),
        |at| at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

fn shown(value: Option<&str>) -> String {
    value.map_or_else(|| "(none)".to_owned(), |v| format!("{v:?}"))
}

/// Runs the audit every `interval` (changed customers plus `sample`) until `shutdown`.
pub async fn periodically(
    stripe: StripeContext,
    pool: PgPool,
    interval: Duration,
    sample: i64,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let scope = Scope::Changed {
            since: None,
            sample,
        };
        match run(&stripe, &pool, scope, false).await {
            Ok(report) => {
                let drift = report.differences();
                if drift > 0 {
                    tracing::warn!(
                        checked = report.checked,
                        customers = report.drift.len(),
                        differences = drift,
                        "audit found the store differing from Stripe"
                    );
                } else {
                    tracing::info!(
                        checked = report.checked,
                        busy = report.busy.len(),
                        "audit: the store agrees with Stripe"
                    );
                }
            }
            Err(error) => tracing::warn!(%error, "audit failed; trying again next time"),
        }
    }
}
