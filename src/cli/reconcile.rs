//! `reconcile`: read our Stripe-linked customers' subscriptions (`status=all`) from Stripe and
//! repair drift in the store through the same path webhooks take, observed "now" (so older
//! events that arrive later do not undo the repair). One transaction per customer: safe while
//! the daemon runs. `--dry-run` shows the changes and rolls them back.
//!
//! It also looks for double billing: more than one live subscription for one plan of one
//! customer. Each is printed to stderr, logged as an error, recorded for the
//! `reconciler_duplicate_subscriptions` gauge (not on a dry run), and makes the command exit
//! with status 3. Which one to cancel (and whether to refund) is a person's decision.

use std::collections::BTreeMap;
use std::process::ExitCode;

use chrono::Utc;
use sqlx::PgConnection;

use super::UsageError;
use crate::billing::StripeContext;
use crate::catalog::Catalog;
use crate::config::Settings;
use crate::store::{customers, duplicates, plans};
use crate::stripe::objects::Subscription;
use crate::sync::subscription::{apply, plan_of};
use crate::{app, db};

/// Exit status when some customer is billed twice for one plan.
const DUPLICATES_FOUND: u8 = 3;

pub async fn run(
    settings: &Settings,
    customer: Option<&str>,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let catalog = app::load_catalog(settings)?;
    let Some(stripe) = StripeContext::from_settings(&settings.stripe, catalog.clone())? else {
        return Err(UsageError("reconcile needs STRIPE_API_KEY".into()).into());
    };
    let pool = db::pool(settings)?;
    let linked = customers::linked(&mut *pool.acquire().await?, customer).await?;
    if let Some(id) = customer
        && linked.is_empty()
    {
        return Err(UsageError(format!("no customer {id} linked to Stripe")).into());
    }
    let (mut checked, mut changed, mut doubled) = (0, 0, 0);
    for c in linked {
        let Some(stripe_id) = c.stripe_id.as_deref() else {
            continue;
        };
        let label = c.id.clone().unwrap_or_else(|| format!("pk:{}", c.pk));
        let subscriptions = crate::audit::read_subscriptions(&stripe.api, stripe_id).await?;
        let mut tx = pool.begin().await?;
        let before = plans::snapshot(&mut tx, c.pk).await?;
        let observed = Utc::now().timestamp();
        for sub in &subscriptions {
            apply(&mut tx, &catalog, sub, false, observed)
                .await
                .map_err(|e| anyhow::anyhow!("{label}: {e}"))?;
        }
        let after = plans::snapshot(&mut tx, c.pk).await?;
        for row in &after {
            let old = before.iter().find(|b| {
                b.plan_id == row.plan_id && b.stripe_subscription_id == row.stripe_subscription_id
            });
            if old != Some(row) {
                changed += 1;
                let from = old.map_or("(none)".to_owned(), ToString::to_string);
                println!("{label}: {from} -> {row}");
            }
        }
        let duplicates = billed_twice(&mut tx, &catalog, &subscriptions).await?;
        for (plan, ids) in &duplicates {
            doubled += 1;
            let ids = ids.join(", ");
            eprintln!("DOUBLE BILLING: {label} has live subscriptions {ids} for plan {plan}");
            tracing::error!(customer = %label, plan, subscriptions = %ids, "double billing");
        }
        checked += 1;
        if dry_run {
            tx.rollback().await?;
        } else {
            duplicates::record(&mut tx, c.pk, &duplicates).await?;
            tx.commit().await?;
        }
    }
    let verb = if dry_run { "would change" } else { "changed" };
    println!("{checked} customers checked, {changed} plans {verb}, {doubled} plans billed twice");
    Ok(if doubled > 0 {
        ExitCode::from(DUPLICATES_FOUND)
    } else {
        ExitCode::SUCCESS
    })
}

/// Plans with more than one billing subscription: plan id → subscription ids.
async fn billed_twice(
    conn: &mut PgConnection,
    catalog: &Catalog,
    subscriptions: &[Subscription],
) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let mut by_plan: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for sub in subscriptions {
        if !sub.bills() {
            continue;
        }
        if let Some(plan) = plan_of(conn, catalog, sub).await? {
            // An entity's plan is its own: the customer's and each entity's count apart.
            let key = match sub.metadata.get("entity_id") {
                Some(entity) => format!("{} (entity {entity})", plan.id),
                None => plan.id.clone(),
            };
            by_plan.entry(key).or_default().push(sub.id.clone());
        }
    }
    by_plan.retain(|_, ids| ids.len() > 1);
    Ok(by_plan)
}
