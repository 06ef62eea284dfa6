//! A plan as a customer (or an entity) holds it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::Time;
use crate::catalog::{Catalog, Interval};
use crate::store::plans::Product;

/// A plan as the view shows it: its state, its history's times, and its catalog price
/// (`interval`, `amount` and `currency` are null for a plan without a price).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct PlanView {
    pub plan_id: String,
    pub status: String,
    pub stripe_subscription_id: Option<String>,
    pub current_period_end: Option<Time>,
    pub cancel_at_period_end: bool,
    pub cancel_at: Option<Time>,
    pub canceled_at: Option<Time>,
    pub quantity: i32,
    pub trial_end: Option<Time>,
    pub started_at: Time,
    pub ended_at: Option<Time>,
    pub interval: Option<&'static str>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub next_renewal_at: Option<Time>,
}

impl PlanView {
    pub(crate) fn new(catalog: &Catalog, p: &Product) -> Self {
        let price = catalog
            .plan(&p.plan_id)
            .and_then(|plan| plan.price.as_ref());
        let interval = price.map(|price| match price.interval {
            Interval::Day => "day",
            Interval::Week => "week",
            Interval::Month => "month",
            Interval::Year => "year",
        });
        Self {
            plan_id: p.plan_id.clone(),
            status: p.status.clone(),
            stripe_subscription_id: p.stripe_subscription_id.clone(),
            current_period_end: Time::of(p.current_period_end),
            cancel_at_period_end: p.cancel_at_period_end,
            cancel_at: Time::of(p.cancel_at),
            canceled_at: Time::of(p.canceled_at),
            quantity: p.quantity,
            trial_end: Time::of(p.trial_end),
            started_at: Time(p.started_at),
            ended_at: Time::of(p.ended_at),
            interval,
            amount: price.map(|price| price.amount),
            currency: price.map(|price| price.currency.clone()),
            next_renewal_at: Time::of(next_renewal(p)),
        }
    }

    pub(crate) fn all(catalog: &Catalog, products: &[Product]) -> Vec<Self> {
        products.iter().map(|p| Self::new(catalog, p)).collect()
    }
}

/// When a plan renews: the end of its period, for a subscription that Stripe will renew
/// then (active, trialing or past due, neither set to cancel at the period end nor at a
/// date before it).
fn next_renewal(p: &Product) -> Option<DateTime<Utc>> {
    let end = p.current_period_end?;
    let renews = p.stripe_subscription_id.is_some()
        && matches!(p.status.as_str(), "active" | "trialing" | "past_due")
        && !p.cancel_at_period_end
        && p.cancel_at.is_none_or(|at| at > end);
    renews.then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_renews_at_its_period_end_only_when_stripe_will_renew_it() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let end = at("2027-01-01T00:00:00Z");
        let pro = Product {
            plan_id: "pro".to_owned(),
            status: "active".to_owned(),
            stripe_subscription_id: Some("sub_1".to_owned()),
            current_period_end: Some(end),
            cancel_at_period_end: false,
            cancel_at: None,
            canceled_at: None,
            quantity: 1,
            trial_end: None,
            started_at: at("2026-12-01T00:00:00Z"),
            ended_at: None,
        };
        let with = |f: &dyn Fn(&mut Product)| {
            let mut p = pro.clone();
            f(&mut p);
            next_renewal(&p)
        };
        assert_eq!(next_renewal(&pro), Some(end));
        assert_eq!(with(&|p| p.status = "past_due".to_owned()), Some(end));
        assert_eq!(with(&|p| p.status = "paused".to_owned()), None);
        assert_eq!(with(&|p| p.status = "unpaid".to_owned()), None);
        assert_eq!(with(&|p| p.status = "expired".to_owned()), None);
        assert_eq!(with(&|p| p.cancel_at_period_end = true), None);
        assert_eq!(with(&|p| p.cancel_at = Some(end)), None);
        let later = at("2027-03-01T00:00:00Z");
        assert_eq!(with(&|p| p.cancel_at = Some(later)), Some(end));
        assert_eq!(with(&|p| p.stripe_subscription_id = None), None);
    }
}
