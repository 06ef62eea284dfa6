//! Rewards: discounts the catalog offers (`[[rewards]]`), created in Stripe as coupons lazily
//! and per account (`billing::coupons`), given with an attach or to a live subscription.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use super::{CatalogError, check_id, invalid};

/// Stripe's longest coupon name.
const MAX_NAME_CHARS: usize = 40;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Reward {
    pub id: String,
    /// What invoices and Checkout show (Stripe's coupon name); the id when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A percentage off, more than 0 and at most 100 (decimals allowed: 12.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent_off: Option<f64>,
    /// An amount off, in minor units of `currency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_off: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    pub duration: RewardDuration,
}

/// How long a reward takes something off: the first invoice, every invoice, or the invoices
/// of N months. In TOML: `"once"`, `"forever"` or `{ months = N }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewardDuration {
    Once,
    Forever,
    Months(u32),
}

impl RewardDuration {
    /// Stripe's `duration`: `once`, `forever` or `repeating`.
    pub fn stripe_name(self) -> &'static str {
        match self {
            Self::Once => "once",
            Self::Forever => "forever",
            Self::Months(_) => "repeating",
        }
    }

    /// Stripe's `duration_in_months`, for a repeating reward.
    pub fn months(self) -> Option<u32> {
        match self {
            Self::Months(months) => Some(months),
            _ => None,
        }
    }
}

impl Serialize for RewardDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Self::Once => serializer.serialize_str("once"),
            Self::Forever => serializer.serialize_str("forever"),
            Self::Months(months) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("months", months)?;
                map.end()
            }
        }
    }
}

const DURATION_EXPECTED: &str = "\"once\", \"forever\" or { months = N }";

impl<'de> Deserialize<'de> for RewardDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Duration;

        impl<'de> Visitor<'de> for Duration {
            type Value = RewardDuration;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(DURATION_EXPECTED)
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<RewardDuration, E> {
                match value {
                    "once" => Ok(RewardDuration::Once),
                    "forever" => Ok(RewardDuration::Forever),
                    other => Err(E::custom(format!(
                        "duration `{other}`: expected {DURATION_EXPECTED}"
                    ))),
                }
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RewardDuration, A::Error> {
                let mut months = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key != "months" || months.is_some() {
                        return Err(de::Error::custom(format!(
                            "duration: unexpected `{key}`: expected {DURATION_EXPECTED}"
                        )));
                    }
                    months = Some(map.next_value::<u32>()?);
                }
                months.map(RewardDuration::Months).ok_or_else(|| {
                    de::Error::custom(format!("duration: expected {DURATION_EXPECTED}"))
                })
            }
        }

        deserializer.deserialize_any(Duration)
    }
}

impl Reward {
    /// The name Stripe shows: `name`, else the id.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }

    /// A digest of the reward's content: an edited reward gets a new coupon (Stripe's
    /// coupons cannot change what they take off).
    pub fn digest(&self) -> String {
        let body = serde_json::to_vec(self).expect("rewards serialize");
        hex::encode(Sha256::digest(body))
    }
}

/// Checks every reward; errors name the entry (`reward `spring``).
pub(super) fn validate(rewards: &[Reward]) -> Result<(), CatalogError> {
    let mut seen = HashSet::new();
    for reward in rewards {
        let entry = format!("reward `{}`", reward.id);
        check_id(&entry, &reward.id)?;
        if !seen.insert(reward.id.as_str()) {
            return Err(invalid(entry, "defined twice"));
        }
        if let Some(name) = &reward.name
            && (name.trim().is_empty()
                || name.chars().count() > MAX_NAME_CHARS
                || name.chars().any(char::is_control))
        {
            return Err(invalid(
                entry,
                format!("name must be 1-{MAX_NAME_CHARS} printable characters"),
            ));
        }
        match (reward.percent_off, reward.amount_off) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(invalid(
                    entry,
                    "needs exactly one of percent_off and amount_off",
                ));
            }
            (Some(percent), None) => {
                if !(percent > 0.0 && percent <= 100.0) {
                    return Err(invalid(
                        entry,
                        "percent_off must be more than 0 and at most 100",
                    ));
                }
                if reward.currency.is_some() {
                    return Err(invalid(
                        entry,
                        "currency goes with amount_off, not percent_off",
                    ));
                }
            }
            (None, Some(amount)) => {
                if amount < 1 {
                    return Err(invalid(entry, "amount_off must be at least 1"));
                }
                let currency = reward.currency.as_deref().unwrap_or_default();
                if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_lowercase()) {
                    return Err(invalid(
                        entry,
                        "amount_off needs a currency, a lowercase ISO code such as \"usd\"",
                    ));
                }
            }
        }
        if reward.duration == RewardDuration::Months(0) {
            return Err(invalid(entry, "duration.months must be at least 1"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::catalog::Catalog;

    use super::*;

    #[test]
    fn durations_read_and_write_as_written() {
        let c = Catalog::parse(
            "[[rewards]]\nid='a'\npercent_off=10\nduration='once'\n\
             [[rewards]]\nid='b'\namount_off=500\ncurrency='usd'\nduration='forever'\n\
             [[rewards]]\nid='c'\npercent_off=12.5\nduration={months=3}\nname='Spring'",
        )
        .unwrap();
        let durations: Vec<_> = c.rewards.iter().map(|r| r.duration).collect();
        assert_eq!(
            durations,
            [
                RewardDuration::Once,
                RewardDuration::Forever,
                RewardDuration::Months(3)
            ]
        );
        assert_eq!(c.reward("c").unwrap().display_name(), "Spring");
        assert_eq!(c.reward("a").unwrap().display_name(), "a");
        let json = serde_json::to_value(&c.rewards).unwrap();
        assert_eq!(json[2]["duration"], serde_json::json!({"months": 3}));
        assert_eq!(json[0]["duration"], "once");
    }

    #[test]
    fn errors_name_the_reward() {
        let cases = [
            (
                "id='a'\nduration='once'",
                "reward `a`: needs exactly one of",
            ),
            (
                "id='a'\npercent_off=5\namount_off=5\ncurrency='usd'\nduration='once'",
                "needs exactly one of",
            ),
            ("id='a'\npercent_off=0\nduration='once'", "more than 0"),
            ("id='a'\npercent_off=100.5\nduration='once'", "at most 100"),
            ("id='a'\namount_off=5\nduration='once'", "needs a currency"),
            (
                "id='a'\namount_off=5\ncurrency='USD'\nduration='once'",
                "lowercase ISO",
            ),
            (
                "id='a'\namount_off=0\ncurrency='usd'\nduration='once'",
                "at least 1",
            ),
            (
                "id='a'\npercent_off=5\ncurrency='usd'\nduration='once'",
                "currency goes with amount_off",
            ),
            (
                "id='a'\npercent_off=5\nduration='weekly'",
                "duration `weekly`",
            ),
            (
                "id='a'\npercent_off=5\nduration={weeks=2}",
                "unexpected `weeks`",
            ),
            ("id='a'\npercent_off=5\nduration={months=0}", "at least 1"),
            ("id='a'\npercent_off=5", "missing field `duration`"),
            (
                "id='a'\npercent_off=5\nduration='once'\npct=1",
                "unknown field `pct`",
            ),
            (
                "id='a'\npercent_off=5\nduration='once'\nname='this name is far too long for a Stripe coupon'",
                "name must be",
            ),
            (
                "id='a b'\npercent_off=5\nduration='once'",
                "reward `a b`: ids are",
            ),
        ];
        for (body, expected) in cases {
            let text = format!("[[rewards]]\n{body}");
            let err = Catalog::parse(&text).unwrap_err().to_string();
            assert!(err.contains(expected), "{err} should contain {expected}");
        }
        let twice = "[[rewards]]\nid='a'\npercent_off=5\nduration='once'\n\
                     [[rewards]]\nid='a'\npercent_off=6\nduration='once'";
        let err = Catalog::parse(twice).unwrap_err().to_string();
        assert!(err.contains("reward `a`: defined twice"), "{err}");
    }

    #[test]
    fn an_edited_reward_has_another_digest_and_only_then() {
        let digest = |body: &str| {
            Catalog::parse(&format!("[[rewards]]\n{body}"))
                .unwrap()
                .rewards[0]
                .digest()
        };
        let base = digest("id='a'\npercent_off=10\nduration='once'");
        // The same reward written otherwise (field order, spacing, a comment) is the same
        // coupon: no new Stripe coupon for it.
        assert_eq!(
            base,
            digest("duration = 'once' # once\n  percent_off = 10\nid = 'a'")
        );
        // Any edit of what the coupon is makes another one.
        for edited in [
            "id='a'\npercent_off=15\nduration='once'",
            "id='a'\npercent_off=10\nduration='forever'",
            "id='a'\npercent_off=10\nduration={months=3}",
            "id='a'\namount_off=10\ncurrency='usd'\nduration='once'",
        ] {
            assert_ne!(base, digest(edited), "{edited}");
        }
    }
}
