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
//!
//! Files: `report` (what a run found), `customer` (one customer read, compared, repaired and
//! recorded), `compare` (what differs between a read and the store).
//!
//! [`apply`]: crate::sync::subscription::apply
//! [`customers::sync_from_stripe`]: crate::store::customers::sync_from_stripe

mod compare;
mod customer;
mod report;

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::billing::StripeContext;
use crate::store::audits::{self, Counts};

use customer::audit_customer;
pub(crate) use customer::read_subscriptions;
pub use report::{CustomerDrift, Difference, Report};

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
