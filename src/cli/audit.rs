//! `audit [--all] [--dry-run] [--json]`: the daemon's periodic audit against Stripe, on
//! demand (see [`crate::audit`]). Without `--all`: the customers changed since the previous
//! run, plus `stripe.audit_sample` others at random. Exit status 1 when the store differed
//! from Stripe (repaired or not), 0 when it did not, 2 on bad input or without
//! STRIPE_API_KEY.

use std::process::ExitCode;

use super::UsageError;
use crate::audit::{self, Report, Scope};
use crate::billing::StripeContext;
use crate::config::Settings;
use crate::{app, db};

/// Exit status when the audit found a difference.
const DRIFT_FOUND: u8 = 1;

pub async fn run(
    settings: &Settings,
    all: bool,
    dry_run: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let catalog = app::load_catalog(settings)?;
    let Some(stripe) = StripeContext::from_settings(&settings.stripe, catalog)? else {
        return Err(UsageError("audit needs STRIPE_API_KEY".into()).into());
    };
    let pool = db::pool(settings)?;
    let scope = if all {
        Scope::All
    } else {
        Scope::Changed {
            since: None,
            sample: i64::from(settings.stripe.audit_sample),
        }
    };
    let report = audit::run(&stripe, &pool, scope, dry_run).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(if report.drift.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(DRIFT_FOUND)
    })
}

fn print_table(report: &Report) {
    if !report.drift.is_empty() {
        println!(
            "{:<24} {:<22} {:<28} {:<30} STRIPE",
            "CUSTOMER", "FIELD", "SUBSCRIPTION", "OURS"
        );
    }
    for customer in &report.drift {
        for d in &customer.differences {
            println!(
                "{:<24} {:<22} {:<28} {:<30} {}",
                customer.customer,
                d.field,
                d.subscription_id.as_deref().unwrap_or("-"),
                d.ours,
                d.stripe
            );
        }
    }
    let repaired = report.drift.iter().filter(|c| c.repaired).count();
    let outcome = if report.dry_run {
        "nothing repaired (dry run)".to_owned()
    } else {
        format!("{repaired} repaired")
    };
    println!(
        "{} customers checked, {} skipped (work queued), {} with drift ({} differences), {outcome}",
        report.checked,
        report.busy.len(),
        report.drift.len(),
        report.differences()
    );
}
