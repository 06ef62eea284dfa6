//! `reconcile`: read our Stripe-linked customers' subscriptions (`status=all`) from Stripe and
//! repair drift in the store through the same path webhooks take, observed "now" (so older
//! events that arrive later do not undo the repair). One transaction per customer: safe while
//! the daemon runs. `--dry-run` shows the changes and rolls them back.

use chrono::Utc;

use crate::config::Settings;
use crate::handlers::jobs::StripeContext;
use crate::handlers::objects::Subscription;
use crate::handlers::subscription::apply;
use crate::store::{customers, plans};
use crate::{app, db};

pub async fn run(settings: &Settings, customer: Option<&str>, dry_run: bool) -> anyhow::Result<()> {
    let catalog = app::load_catalog(settings)?;
    let Some(stripe) = StripeContext::from_settings(&settings.stripe, catalog.clone())? else {
        anyhow::bail!("reconcile needs STRIPE_API_KEY");
    };
    let pool = db::pool(settings)?;
    let linked = customers::linked(&mut *pool.acquire().await?, customer).await?;
    if let Some(id) = customer
        && linked.is_empty()
    {
        anyhow::bail!("no customer {id} linked to Stripe");
    }
    let (mut checked, mut changed) = (0, 0);
    for c in linked {
        let Some(stripe_id) = c.stripe_id.as_deref() else {
            continue;
        };
        let label = c.id.clone().unwrap_or_else(|| format!("pk:{}", c.pk));
        let subscriptions = stripe.api.list_subscriptions(stripe_id).await?;
        let mut tx = pool.begin().await?;
        let before = plans::snapshot(&mut tx, c.pk).await?;
        let observed = Utc::now().timestamp();
        for sub in &subscriptions {
            apply(&mut tx, &catalog, &Subscription::from(sub), false, observed)
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
        checked += 1;
        if dry_run {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
    }
    let verb = if dry_run { "would change" } else { "changed" };
    println!("{checked} customers checked, {changed} plans {verb}");
    Ok(())
}
