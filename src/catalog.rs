//! The catalog: features and plans, written by users in TOML (`RECONCILER_CATALOG`).
//!
//! Loaded and validated at start (an error names the bad entry), kept in memory for the
//! appliers and the API, and stored versioned in Postgres by `store::catalog_versions`.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use chrono::{DateTime, Months, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

mod rewards;

pub use rewards::{Reward, RewardDuration};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    #[serde(default)]
    pub features: Vec<Feature>,
    #[serde(default)]
    pub plans: Vec<Plan>,
    /// Discounts to give (`[[rewards]]`). Left out of the serialized catalog when empty, so
    /// catalogs written before keep their digest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rewards: Vec<Reward>,
    /// Which plan statuses grant access: `billing.past_due_access` from the settings, not
    /// part of the catalog file (set by [`crate::app::load_catalog`]).
    #[serde(skip)]
    pub access: crate::access::PastDueAccess,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Feature {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: FeatureKind,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FeatureKind {
    Metered,
    Boolean,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub id: String,
    pub name: String,
    pub group: Option<String>,
    #[serde(default)]
    pub default: bool,
    #[serde(default)]
    pub add_on: bool,
    pub price: Option<Price>,
    #[serde(default)]
    pub items: Vec<PlanItem>,
    /// A free trial an attach gives, once per customer and once per fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_trial: Option<FreeTrial>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FreeTrial {
    /// 1 to 730 (Stripe's longest trial).
    pub days: u32,
    /// With a card (taken at checkout, or the customer's default payment method); without
    /// one, the trial starts at once and the subscription cancels at its end unless a payment
    /// method was added.
    #[serde(default = "yes")]
    pub card_required: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub amount: i64,
    pub currency: String,
    pub interval: Interval,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    Day,
    Week,
    Month,
    Year,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlanItem {
    pub feature: String,
    pub included: Option<i64>,
    pub reset: Option<Reset>,
    pub usage_price: Option<UsagePrice>,
    /// `included` is per unit of the plan's quantity (seats): 3 seats of a plan including
    /// 100 grant 300. Left out of the serialized catalog when false, so catalogs written
    /// before it keep their fingerprint.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub per_unit: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Reset {
    Day,
    Week,
    Month,
    Year,
    Never,
}

impl Reset {
    /// The next reset after `from`, or None for `never`.
    pub fn next_after(self, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Reset::Day => from.checked_add_signed(TimeDelta::days(1)),
            Reset::Week => from.checked_add_signed(TimeDelta::weeks(1)),
            Reset::Month => from.checked_add_months(Months::new(1)),
            Reset::Year => from.checked_add_months(Months::new(12)),
            Reset::Never => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UsagePrice {
    pub per_unit: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("catalog: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("catalog: {entry}: {reason}")]
    Invalid { entry: String, reason: String },
}

fn invalid(entry: impl Into<String>, reason: impl Into<String>) -> CatalogError {
    CatalogError::Invalid {
        entry: entry.into(),
        reason: reason.into(),
    }
}

impl Catalog {
    pub fn load(path: &Path) -> Result<Self, CatalogError> {
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, CatalogError> {
        let catalog: Catalog = toml::from_str(text)?;
        catalog.validate()?;
        Ok(catalog)
    }

    fn validate(&self) -> Result<(), CatalogError> {
        let mut features = HashMap::new();
        for f in &self.features {
            check_id(&format!("feature `{}`", f.id), &f.id)?;
            if features.insert(f.id.as_str(), f.kind).is_some() {
                return Err(invalid(format!("feature `{}`", f.id), "defined twice"));
            }
        }
        let mut plans = HashSet::new();
        let mut defaults = HashMap::new();
        for plan in &self.plans {
            let entry = format!("plan `{}`", plan.id);
            check_id(&entry, &plan.id)?;
            if !plans.insert(plan.id.as_str()) {
                return Err(invalid(entry, "defined twice"));
            }
            if plan.add_on && plan.default {
                return Err(invalid(entry, "an add-on cannot be a default plan"));
            }
            if plan.default {
                if plan.price.is_some() {
                    return Err(invalid(entry, "a default plan must be free (no `price`)"));
                }
                let group = plan
                    .group
                    .as_deref()
                    .ok_or_else(|| invalid(&entry, "a default plan needs a `group`"))?;
                if let Some(other) = defaults.insert(group, plan.id.as_str()) {
                    return Err(invalid(
                        entry,
                        format!("group `{group}` already has default plan `{other}`"),
                    ));
                }
            }
            if let Some(price) = &plan.price {
                if price.amount < 0 {
                    return Err(invalid(entry, "price.amount must not be negative"));
                }
                if price.currency.len() != 3
                    || !price.currency.chars().all(|c| c.is_ascii_lowercase())
                {
                    return Err(invalid(
                        entry,
                        "price.currency must be a lowercase ISO code such as \"usd\"",
                    ));
                }
            }
            if let Some(trial) = &plan.free_trial {
                if plan.price.is_none() {
                    return Err(invalid(
                        &entry,
                        "a free_trial needs the plan to have a `price`",
                    ));
                }
                if !(1..=730).contains(&trial.days) {
                    return Err(invalid(&entry, "free_trial.days must be between 1 and 730"));
                }
            }
            let mut seen = HashSet::new();
            for (i, item) in plan.items.iter().enumerate() {
                let entry = format!("plan `{}` item {i} (feature `{}`)", plan.id, item.feature);
                let kind = *features
                    .get(item.feature.as_str())
                    .ok_or_else(|| invalid(&entry, "feature is not defined in [[features]]"))?;
                if !seen.insert(item.feature.as_str()) {
                    return Err(invalid(entry, "feature listed twice in one plan"));
                }
                match kind {
                    FeatureKind::Boolean => {
                        if item.included.is_some()
                            || item.reset.is_some()
                            || item.usage_price.is_some()
                            || item.per_unit
                        {
                            return Err(invalid(
                                entry,
                                "a boolean feature takes no included/reset/usage_price/per_unit",
                            ));
                        }
                    }
                    FeatureKind::Metered => {
                        let included = item
                            .included
                            .ok_or_else(|| invalid(&entry, "a metered feature needs `included`"))?;
                        if included < 0 {
                            return Err(invalid(entry, "`included` must not be negative"));
                        }
                        if item.reset.is_none() {
                            return Err(invalid(entry, "a metered feature needs `reset`"));
                        }
                        if let Some(usage) = &item.usage_price {
                            if usage.per_unit < 0 {
                                return Err(invalid(
                                    entry,
                                    "usage_price.per_unit must not be negative",
                                ));
                            }
                            if plan.price.is_none() {
                                return Err(invalid(
                                    entry,
                                    "usage_price needs the plan to have a `price` (a currency and interval)",
                                ));
                            }
                        }
                    }
                }
            }
        }
        rewards::validate(&self.rewards)
    }

    pub fn plan(&self, id: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.id == id)
    }

    pub fn feature(&self, id: &str) -> Option<&Feature> {
        self.features.iter().find(|f| f.id == id)
    }

    pub fn reward(&self, id: &str) -> Option<&Reward> {
        self.rewards.iter().find(|r| r.id == id)
    }

    /// The default plan of `group`, if the catalog has one.
    pub fn default_plan(&self, group: &str) -> Option<&Plan> {
        self.plans
            .iter()
            .find(|p| p.default && p.group.as_deref() == Some(group))
    }

    /// Every default plan (one per group).
    pub fn default_plans(&self) -> impl Iterator<Item = &Plan> {
        self.plans.iter().filter(|p| p.default)
    }

    /// A stable digest of the catalog's content.
    pub fn digest(&self) -> String {
        let canonical = serde_json::to_vec(self).expect("the catalog serializes");
        hex::encode(Sha256::digest(canonical))
    }
}

fn check_id(entry: &str, id: &str) -> Result<(), CatalogError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            entry,
            "ids are 1-64 characters of a-z, 0-9, `_` and `-`",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../config/catalog.example.toml");

    #[test]
    fn the_example_catalog_is_valid() {
        let c = Catalog::parse(EXAMPLE).unwrap();
        assert_eq!(c.default_plan("main").unwrap().id, "free");
        assert!(c.plan("priority-support").unwrap().add_on);
        assert_eq!(
            c.feature("priority_support").unwrap().kind,
            FeatureKind::Boolean
        );
        assert_eq!(
            c.reward("launch").unwrap().duration,
            RewardDuration::Months(3)
        );
    }

    #[test]
    fn errors_name_the_bad_entry() {
        let cases = [
            (
                "[[plans]]\nid='a'\nname='A'\n[[plans.items]]\nfeature='nope'\nincluded=1\nreset='month'",
                "plan `a` item 0 (feature `nope`)",
            ),
            (
                "[[features]]\nid='m'\ntype='metered'\n[[plans]]\nid='a'\nname='A'\n[[plans.items]]\nfeature='m'",
                "needs `included`",
            ),
            (
                "[[plans]]\nid='a'\nname='A'\ngroup='g'\ndefault=true\n[[plans]]\nid='b'\nname='B'\ngroup='g'\ndefault=true",
                "plan `b`: group `g` already has default plan `a`",
            ),
            (
                "[[plans]]\nid='a'\nname='A'\nprise=1",
                "unknown field `prise`",
            ),
            (
                "[[plans]]\nid='p'\nname='P'\ngroup='g'\ndefault=true\nprice={amount=1,currency='usd',interval='month'}",
                "must be free",
            ),
        ];
        for (text, expected) in cases {
            let err = Catalog::parse(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{err} should contain {expected}");
        }
    }

    #[test]
    fn resets_step_by_calendar() {
        let t: DateTime<Utc> = "2026-01-31T00:00:00Z".parse().unwrap();
        assert_eq!(
            Reset::Month.next_after(t).unwrap().to_rfc3339(),
            "2026-02-28T00:00:00+00:00"
        );
        assert_eq!(Reset::Never.next_after(t), None);
    }
}
