//! Stripe object ids accepted on input.
//!
//! An id we are given ends up in a Stripe API path (`/v1/customers/{id}`) and in our
//! store. Stripe ids are a type prefix and a short run of `[A-Za-z0-9_]`; anything else
//! (a `/`, `..`, `?expand[]=...`) would let a caller steer our Stripe calls to another
//! path or add parameters to them, so it is refused before it is stored or sent.

/// The longest id tail accepted after the prefix (Stripe's own ids are far shorter).
pub const MAX_TAIL: usize = 250;

/// True when `id` is `prefix` followed by 1..=[`MAX_TAIL`] ASCII letters, digits or `_`.
pub fn is_valid(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|tail| {
        (1..=MAX_TAIL).contains(&tail.len())
            && tail.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_stripe_shaped_ids() {
        assert!(is_valid("cus_", "cus_NffrFeUfNV2Hib"));
        assert!(is_valid("acct_", "acct_1Mz_abc"));
        assert!(is_valid("cus_", &format!("cus_{}", "a".repeat(MAX_TAIL))));
    }

    #[test]
    fn refuses_paths_parameters_and_wrong_prefixes() {
        for id in [
            "cus_",
            "cus_a/../../v1/subscriptions/sub_X",
            "cus_a?expand[]=x&metadata[evil]=1",
            "cus_a b",
            "cus_a%2F",
            "cus_ü",
            "cus_a\0",
            "sub_123",
            "CUS_123",
            "xcus_123",
        ] {
            assert!(!is_valid("cus_", id), "{id:?}");
        }
        assert!(!is_valid(
            "cus_",
            &format!("cus_{}", "a".repeat(MAX_TAIL + 1))
        ));
    }
}
