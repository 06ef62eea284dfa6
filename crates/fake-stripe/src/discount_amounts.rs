//! What a subscription's discounts (see `discounts.rs`) take off its invoices.
//!
//! On invoices: `discounts` lists the ids that applied; each discountable line (not a
//! proration) gets `discount_amounts: [{amount, discount}]`, one entry per discount, and
//! the invoice `total_discount_amounts` their sums; `subtotal` is before discounts, `total`
//! and `amount_due` after. Several discounts apply one after another, each to what the
//! earlier ones left (a guess). Amounts, in the currency's smallest unit:
//! - `percent_off`: per line, `line × percent / 100` rounded half up (half a cent rounds up
//!   to the next cent), each line on its own;
//! - `amount_off` (same currency only): at most the discountable total, spread over the
//!   lines in proportion to their amounts, each share rounded half up and the last line
//!   taking what is left so the shares add up exactly.

use serde_json::{Value, json};

use super::billing;
use super::coupons;
use super::discounts::{Wanted, coupon_of, ids_of};
use super::state::State;

/// Sets `invoice`'s discounts to `ids` and prices it (see the module's doc); `once`
/// discounts that took something off are used up.
pub(super) fn apply(state: &mut State, invoice: &mut Value, ids: &[String]) {
    invoice["discounts"] = json!(ids);
    price(state, invoice);
    let used: Vec<String> = invoice["total_discount_amounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["amount"].as_i64().is_some_and(|a| a > 0))
        .filter_map(|t| t["discount"].as_str())
        .filter(|id| coupon_of(state, id).is_some_and(|c| c["duration"] == "once"))
        .map(str::to_owned)
        .collect();
    state.discounts_used.extend(used);
}

/// Recomputes the lines' `discount_amounts`, `total_discount_amounts` and the totals from
/// the discounts `invoice["discounts"]` names.
pub(super) fn price(state: &State, invoice: &mut Value) {
    let ids = ids_of(invoice);
    let currency = invoice["currency"].as_str().unwrap_or_default().to_owned();
    let Some(lines) = invoice["lines"]["data"].as_array_mut() else {
        return;
    };
    let mut left: Vec<i64> = lines
        .iter()
        .map(|l| {
            let amount = l["amount"].as_i64().unwrap_or(0);
            if l["discountable"] == true {
                amount.max(0)
            } else {
                0
            }
        })
        .collect();
    for line in lines.iter_mut() {
        line["discount_amounts"] = json!([]);
    }
    let mut totals = Vec::new();
    for id in &ids {
        let Some(coupon) = coupon_of(state, id) else {
            continue;
        };
        let shares = shares(coupon, &left, &currency);
        let mut total = 0;
        for (i, line) in lines.iter_mut().enumerate() {
            if line["discountable"] != true {
                continue;
            }
            let share = shares[i].min(left[i]);
            left[i] -= share;
            total += share;
            if let Some(amounts) = line["discount_amounts"].as_array_mut() {
                amounts.push(json!({"amount": share, "discount": id}));
            }
        }
        totals.push(json!({"amount": total, "discount": id}));
    }
    invoice["total_discount_amounts"] = json!(totals);
    billing::recompute_totals(invoice);
}

/// What the coupons `wanted` names would take off lines of `amounts` in `currency` (a
/// Checkout Session's preview of its first invoice), as [`price`] computes it.
pub(super) fn preview(state: &State, wanted: &[Wanted], amounts: &[i64], currency: &str) -> i64 {
    let mut left: Vec<i64> = amounts.iter().map(|a| (*a).max(0)).collect();
    let mut total = 0;
    for one in wanted {
        let coupon = match one {
            Wanted::New { coupon, .. } => coupons::any(state, coupon),
            Wanted::Keep(id) => coupon_of(state, id),
        };
        let Some(coupon) = coupon else {
            continue;
        };
        for (i, share) in shares(coupon, &left, currency).into_iter().enumerate() {
            let share = share.min(left[i]);
            left[i] -= share;
            total += share;
        }
    }
    total
}

/// What `coupon` takes off each of the amounts `left`.
fn shares(coupon: &Value, left: &[i64], currency: &str) -> Vec<i64> {
    match (
        coupon["percent_off"].as_f64(),
        coupon["amount_off"].as_i64(),
    ) {
        (Some(percent), _) => left.iter().map(|&a| percent_of(a, percent)).collect(),
        (None, Some(off)) if coupon["currency"] == currency => spread(off, left),
        _ => vec![0; left.len()],
    }
}

/// `amount × percent / 100`, rounded half up, in integers (percent to a millionth).
pub(super) fn percent_of(amount: i64, percent: f64) -> i64 {
    let micro = (percent * 1_000_000.0).round() as i128;
    let scaled = i128::from(amount) * micro;
    let unit = 100_000_000i128;
    ((scaled * 2 + unit) / (2 * unit)) as i64
}

/// `off` (at most the sum of `amounts`) spread over `amounts` in proportion, each share
/// rounded half up, the last non-zero amount taking what is left.
pub(super) fn spread(off: i64, amounts: &[i64]) -> Vec<i64> {
    let sum: i64 = amounts.iter().sum();
    let off = off.min(sum);
    let mut shares = vec![0; amounts.len()];
    let Some(last) = amounts.iter().rposition(|&a| a > 0) else {
        return shares;
    };
    let mut given = 0;
    for (i, &amount) in amounts.iter().enumerate().take(last) {
        let share =
            (i128::from(off) * i128::from(amount) * 2 + i128::from(sum)) / (2 * i128::from(sum));
        shares[i] = share as i64;
        given += shares[i];
    }
    shares[last] = (off - given).clamp(0, amounts[last]);
    shares
}

#[cfg(test)]
mod tests {
    use super::{percent_of, spread};

    #[test]
    fn percentages_round_half_up_per_amount() {
        assert_eq!(percent_of(1000, 25.0), 250);
        assert_eq!(percent_of(999, 50.0), 500, "499.5 rounds up");
        assert_eq!(percent_of(997, 50.0), 499, "498.5 rounds up");
        assert_eq!(percent_of(1000, 33.33), 333);
        assert_eq!(percent_of(1001, 12.5), 125, "125.125");
        assert_eq!(percent_of(1003, 12.5), 125, "125.375");
        assert_eq!(percent_of(1004, 12.5), 126, "125.5 rounds up");
        assert_eq!(percent_of(0, 50.0), 0);
        assert_eq!(percent_of(2000, 100.0), 2000);
    }

    #[test]
    fn amounts_off_spread_in_proportion_and_add_up() {
        assert_eq!(spread(500, &[1000, 1000]), [250, 250]);
        assert_eq!(spread(100, &[1000, 2000]), [33, 67]);
        assert_eq!(spread(100, &[1000, 1000, 1000]), [33, 33, 34]);
        assert_eq!(
            spread(5000, &[1000, 2000]),
            [1000, 2000],
            "at most the total"
        );
        assert_eq!(spread(100, &[0, 1000, 0]), [0, 100, 0]);
        assert_eq!(spread(100, &[0, 0]), [0, 0]);
    }
}
