//! One customer audited: read from Stripe, compared with the store, and (in a run that is
//! not a dry run) repaired and recorded in one transaction.

use chrono::Utc;
use sqlx::PgPool;

use super::compare::{Read, compare};
use super::report::{CustomerDrift, Difference};
use crate::billing::StripeContext;
use crate::store::audits::Linked;
use crate::store::{activity, customers};
use crate::stripe::client::StripeApi;
use crate::stripe::objects::Subscription;
use crate::sync::subscription::apply;

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

/// Reads one customer from Stripe, compares, and (with `audit_id`) repairs and records.
pub(super) async fn audit_customer(
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
