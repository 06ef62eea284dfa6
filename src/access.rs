//! What grants access: our status for each Stripe subscription status, and which statuses
//! are live (grant their plan's features), suspended (hold the plan and its balances, but
//! `check` refuses) or neither.
//!
//! | Stripe status        | our status   | access                                        |
//! |----------------------|--------------|-----------------------------------------------|
//! | `trialing`, `active` | same         | live                                          |
//! | `past_due`           | `past_due`   | live unless `billing.past_due_access = none`  |
//! | `unpaid`             | `unpaid`     | live only with `until_canceled`, else suspended |
//! | `paused`             | `paused`     | suspended                                     |
//! | `incomplete`         | `incomplete` | none: not paid yet; the group's plan stays     |
//! | `incomplete_expired`, `canceled` | `expired` | none: ended                          |
//!
//! A suspended plan keeps its place in its group (the default plan does not come back) and
//! its balances (usage is kept), so access returns as it was when the plan is live again.

use serde::Deserialize;

/// `billing.past_due_access`: how long a customer whose renewal failed keeps access.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PastDueAccess {
    /// Access stops at the first failed renewal (`past_due` and `unpaid` are suspended).
    None,
    /// Access is kept while Stripe retries (`past_due` live) and stops when it gives up
    /// (`unpaid` suspended).
    #[default]
    WhileRetrying,
    /// Access is kept until the subscription is canceled (`past_due` and `unpaid` live).
    UntilCanceled,
}

impl PastDueAccess {
    /// The statuses that grant access, as an SQL list.
    pub fn live_sql(self) -> &'static str {
        match self {
            Self::None => "('active', 'trialing')",
            Self::WhileRetrying => "('active', 'trialing', 'past_due')",
            Self::UntilCanceled => "('active', 'trialing', 'past_due', 'unpaid')",
        }
    }

    /// Whether a plan in `status` (ours) grants access.
    pub fn is_live(self, status: &str) -> bool {
        match status {
            "active" | "trialing" => true,
            "past_due" => self != Self::None,
            "unpaid" => self == Self::UntilCanceled,
            _ => false,
        }
    }
}

/// The statuses that hold their plan (live or suspended), whatever the policy, as an SQL
/// list: a held plan is the customer's plan in its group, and its balances are kept.
pub const HELD_SQL: &str = "('active', 'trialing', 'past_due', 'unpaid', 'paused')";

/// Whether a plan in `status` (ours) holds its plan: one of [`HELD_SQL`]'s.
pub fn is_held(status: &str) -> bool {
    matches!(
        status,
        "active" | "trialing" | "past_due" | "unpaid" | "paused"
    )
}

/// Our status for a Stripe subscription status.
pub fn our_status(stripe_status: &str) -> &'static str {
    match stripe_status {
        "trialing" => "trialing",
        "active" => "active",
        "past_due" => "past_due",
        "unpaid" => "unpaid",
        "paused" => "paused",
        "incomplete" => "incomplete",
        _ => "expired", // canceled, incomplete_expired
    }
}

/// Precedence of Stripe statuses for events of the same second (the later in a
/// subscription's usual life wins): incomplete < trialing < active < past_due, paused <
/// unpaid < canceled, incomplete_expired. Two events of one second that undo each other
/// (a failure and its recovery) cannot be told apart by their payloads: the one further
/// down this order wins until a later event arrives.
pub fn status_rank(stripe_status: &str) -> i32 {
    match stripe_status {
        "incomplete" => 0,
        "trialing" => 1,
        "active" => 2,
        "past_due" | "paused" => 3,
        "unpaid" => 4,
        _ => 5, // canceled, incomplete_expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_unpaid_is_live_and_the_policy_decides_past_due() {
        for policy in [
            PastDueAccess::None,
            PastDueAccess::WhileRetrying,
            PastDueAccess::UntilCanceled,
        ] {
            for stripe in ["incomplete", "incomplete_expired", "paused", "canceled"] {
                assert!(!policy.is_live(our_status(stripe)), "{stripe} {policy:?}");
            }
            assert!(policy.is_live(our_status("active")));
            assert!(policy.is_live(our_status("trialing")));
            // The SQL list and the predicate agree.
            for status in ["active", "trialing", "past_due", "unpaid", "paused"] {
                assert_eq!(
                    policy.live_sql().contains(&format!("'{status}'")),
                    policy.is_live(status),
                    "{status} {policy:?}"
                );
                assert!(HELD_SQL.contains(&format!("'{status}'")), "{status} holds");
                assert!(is_held(status), "{status} holds");
            }
        }
        assert!(PastDueAccess::default().is_live("past_due"));
        assert!(!PastDueAccess::default().is_live("unpaid"));
        assert!(!PastDueAccess::None.is_live("past_due"));
        assert!(PastDueAccess::UntilCanceled.is_live("unpaid"));
        for status in ["incomplete", "expired", "scheduled", "canceled"] {
            assert!(
                !HELD_SQL.contains(&format!("'{status}'")),
                "{status} does not hold"
            );
            assert!(!is_held(status), "{status} does not hold");
        }
    }
}
