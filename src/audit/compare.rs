//! What differs between a customer as Stripe has it and the store: each subscription's plan
//! and the fields that matter, the subscriptions Stripe does not list, the name and email.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::report::Difference;
use crate::access::our_status;
use crate::catalog::Catalog;
use crate::store::audits;
use crate::store::customers;
use crate::stripe::objects::{Subscription, timestamp};
use crate::sync::subscription::plan_of;

/// What Stripe has for one customer, read from the second `observed` on.
pub(super) struct Read {
    pub observed: i64,
    pub name: Option<String>,
    pub email: Option<String>,
    pub subscriptions: Vec<Subscription>,
}

/// The differences between what Stripe has (`read`) and the store.
pub(super) async fn compare(
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
