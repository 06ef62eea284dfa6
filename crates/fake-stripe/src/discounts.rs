//! Discounts: a coupon (or a promotion code's coupon) redeemed on a subscription, and what
//! they take off its invoices.
//!
//! A subscription's `discounts` is an array of discount ids (`di_...`), expanded with
//! `expand[]=discounts`. A discount (`stripe_shared::Discount`, API `2026-09-30.endive`)
//! names its coupon at `source: {coupon: "<id>", type: "coupon"}` (an id: since
//! `2025-09-30.clover` it is not expanded, in events either), the `promotion_code` it came
//! from (or null), `customer`, `subscription`, `start` (when it was redeemed) and `end`
//! (`start` + `duration_in_months` for a `repeating` coupon, else null); `checkout_session`
//! stays null (Stripe fills it only for payment-mode sessions). Events:
//! `customer.discount.created` when one is redeemed, `customer.discount.deleted` (the
//! discount as it was) when it is removed or ends. The fake never sends
//! `customer.discount.updated`: replacing a subscription's discounts deletes the old and
//! creates the new (a guess at Stripe's behaviour; Stripe documents `updated` for a
//! customer switching coupons).
//!
//! Request parameters, on `POST /v1/subscriptions` and `/v1/subscriptions/{id}`:
//! `discounts[i][coupon]`, `discounts[i][promotion_code]` (a `promo_...` id) or, on an
//! update, `discounts[i][discount]` (one the subscription has, kept). On an update a
//! populated array replaces the subscription's discounts and `discounts=` (empty) removes
//! them all, as Stripe documents; not sending it leaves them.
//!
//! What they take off an invoice is `discount_amounts.rs`.
//!
//! Durations, judged at the start of the period an invoice bills: `forever` always;
//! `repeating` while that start is before the discount's `end`, then it is removed;
//! `once` on the first invoice it takes something off (a $0 trial invoice does not count,
//! as Stripe ignores coupons on zero-cost invoices), then it is removed at the next invoice.

use chrono::{DateTime, Months, Utc};
use serde_json::{Value, json};

use super::api::ApiError;
use super::coupons;
use super::form::Form;
use super::promotion_codes;
use super::state::State;
use super::webhooks::{EventRequest, PendingEvent};

/// At most this many discounts on one subscription (Stripe's limit).
const MAX_DISCOUNTS: usize = 20;

/// A discount a request asks for.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Wanted {
    /// Redeem a coupon, directly or through a promotion code.
    New {
        coupon: String,
        promotion_code: Option<String>,
    },
    /// Keep a discount the subscription already has.
    Keep(String),
}

/// The `discounts` parameter: `None` when not sent, `Some(vec![])` for `discounts=` (clear).
/// Each entry is checked: the coupon or promotion code can be redeemed now by `customer`,
/// an `amount_off` coupon is in `currency`, a kept discount is one of `current`'s.
pub(super) fn requested(
    state: &State,
    params: &Form,
    customer: Option<&str>,
    currency: Option<&str>,
    current: Option<&Value>,
) -> Result<Option<Vec<Wanted>>, ApiError> {
    if !params.has("discounts") {
        return Ok(None);
    }
    let entries = params.list("discounts");
    if entries.is_empty() {
        return match params.get("discounts") {
            Some("") => Ok(Some(Vec::new())),
            _ => Err(ApiError::invalid(
                "Invalid array: discounts must be a list of hashes, or an empty string.",
                Some("discounts"),
            )),
        };
    }
    if entries.len() > MAX_DISCOUNTS {
        return Err(ApiError::invalid(
            format!("You can apply at most {MAX_DISCOUNTS} discounts."),
            Some("discounts"),
        ));
    }
    let mut wanted = Vec::new();
    let mut coupons_seen: Vec<String> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let given: Vec<(&str, &str)> = ["coupon", "promotion_code", "discount"]
            .into_iter()
            .filter_map(|key| Some((key, entry.get(key).filter(|v| !v.is_empty())?)))
            .collect();
        let [(key, value)] = given[..] else {
            return Err(ApiError::invalid(
                format!(
                    "You must specify exactly one of coupon, discount or promotion_code in \
                     discounts[{i}]."
                ),
                Some(&format!("discounts[{i}]")),
            ));
        };
        let param = format!("discounts[{i}][{key}]");
        let (coupon, one) = match key {
            "coupon" => {
                let coupon = coupons::redeemable(state, value, &param)?;
                (
                    coupon,
                    Wanted::New {
                        coupon: value.to_owned(),
                        promotion_code: None,
                    },
                )
            }
            "promotion_code" => {
                let (_, coupon) = promotion_codes::redeemable_code(state, value, customer, &param)?;
                let coupon_id = coupon["id"].as_str().unwrap_or_default().to_owned();
                (
                    coupon,
                    Wanted::New {
                        coupon: coupon_id,
                        promotion_code: Some(value.to_owned()),
                    },
                )
            }
            _ => {
                let has = current.is_some_and(|sub| {
                    sub["discounts"]
                        .as_array()
                        .is_some_and(|ids| ids.iter().any(|id| id == value))
                });
                if !has {
                    return Err(ApiError::no_such("discount", value, &param));
                }
                let coupon = coupon_of(state, value).cloned().unwrap_or(Value::Null);
                (coupon, Wanted::Keep(value.to_owned()))
            }
        };
        if let (Some(currency), Some(coupon_currency)) = (currency, coupon["currency"].as_str())
            && coupon["amount_off"].is_i64()
            && coupon_currency != currency
        {
            return Err(ApiError::invalid(
                format!(
                    "The coupon {} is in {coupon_currency}, but this is billed in {currency}.",
                    coupon["id"]
                ),
                Some(&param),
            ));
        }
        let coupon_id = coupon["id"].as_str().unwrap_or_default().to_owned();
        if coupons_seen.contains(&coupon_id) {
            return Err(ApiError::invalid(
                format!("The coupon {coupon_id} can only be applied once."),
                Some(&param),
            ));
        }
        coupons_seen.push(coupon_id);
        wanted.push(one);
    }
    Ok(Some(wanted))
}

/// Makes the discounts `wanted` asks for on subscription `subscription` of `customer`
/// (kept ones stay as they are); returns the ids, in order, and the new discounts.
pub(super) fn redeem(
    state: &mut State,
    wanted: &[Wanted],
    customer: &str,
    subscription: &str,
) -> (Vec<String>, Vec<Value>) {
    let mut ids = Vec::new();
    let mut made = Vec::new();
    for one in wanted {
        match one {
            Wanted::Keep(id) => ids.push(id.clone()),
            Wanted::New {
                coupon,
                promotion_code,
            } => {
                let (id, start) = (state.id("di"), state.now());
                let months = coupons::any(state, coupon)
                    .filter(|c| c["duration"] == "repeating")
                    .and_then(|c| c["duration_in_months"].as_u64());
                let end = months.map(|m| add_months(start, m));
                let discount = json!({
                    "id": id, "object": "discount", "checkout_session": null,
                    "customer": customer, "customer_account": null, "end": end,
                    "invoice": null, "invoice_item": null, "promotion_code": promotion_code,
                    "source": {"coupon": coupon, "type": "coupon"}, "start": start,
                    "subscription": subscription, "subscription_item": null
                });
                coupons::redeemed(state, coupon, promotion_code.as_deref());
                state.discounts.insert(id.clone(), discount.clone());
                ids.push(id);
                made.push(discount);
            }
        }
    }
    (ids, made)
}

/// `customer.discount.created` for each discount in `made`.
pub(super) fn created_events(made: &[Value], request: &EventRequest) -> Vec<PendingEvent> {
    made.iter()
        .map(|d| PendingEvent::new("customer.discount.created", d, request))
        .collect()
}

/// Replaces the discounts of `sub` (not stored here) with `wanted`; returns the events:
/// `customer.discount.deleted` for each it loses, then `customer.discount.created` for each
/// new one.
pub(super) fn replace(
    state: &mut State,
    sub: &mut Value,
    wanted: &[Wanted],
    request: &EventRequest,
) -> Vec<PendingEvent> {
    let customer = sub["customer"].as_str().unwrap_or_default().to_owned();
    let id = sub["id"].as_str().unwrap_or_default().to_owned();
    let (ids, made) = redeem(state, wanted, &customer, &id);
    let old: Vec<String> = ids_of(sub);
    let mut events: Vec<PendingEvent> = old
        .iter()
        .filter(|old| !ids.contains(old))
        .filter_map(|old| state.discounts.get(old))
        .map(|d| PendingEvent::new("customer.discount.deleted", d, request))
        .collect();
    events.extend(created_events(&made, request));
    sub["discounts"] = json!(ids);
    events
}

/// The discounts of stored subscription `sub_id` that apply to an invoice billing a period
/// from `at`. Those that have ended (a `once` discount that already took something off an
/// invoice, a `repeating` one whose `end` is not after `at`) are removed from the
/// subscription, which is stored, each with a `customer.discount.deleted`.
pub(super) fn current(
    state: &mut State,
    sub_id: &str,
    at: i64,
) -> (Vec<String>, Vec<PendingEvent>) {
    let Some(sub) = state.subscriptions.get(sub_id) else {
        return (Vec::new(), Vec::new());
    };
    let (mut kept, mut events) = (Vec::new(), Vec::new());
    for id in ids_of(sub) {
        let Some(discount) = state.discounts.get(&id) else {
            continue;
        };
        let ended = state.discounts_used.contains(&id)
            || discount["end"].as_i64().is_some_and(|end| end <= at);
        if ended {
            events.push(PendingEvent::new(
                "customer.discount.deleted",
                discount,
                &EventRequest::default(),
            ));
        } else {
            kept.push(id);
        }
    }
    if let Some(sub) = state.subscriptions.get_mut(sub_id) {
        sub["discounts"] = json!(kept);
    }
    (kept, events)
}

/// The coupon discount `id` came from (deleted coupons included).
pub(super) fn coupon_of<'a>(state: &'a State, id: &str) -> Option<&'a Value> {
    let coupon = state.discounts.get(id)?["source"]["coupon"].as_str()?;
    coupons::any(state, coupon)
}

/// The discount objects for the ids in `ids` (an array), for `expand[]=discounts`.
pub(super) fn expanded(state: &State, ids: &Value) -> Value {
    let objects: Vec<Value> = ids
        .as_array()
        .into_iter()
        .flatten()
        .map(|id| {
            id.as_str()
                .and_then(|id| state.discounts.get(id))
                .cloned()
                .unwrap_or_else(|| id.clone())
        })
        .collect();
    json!(objects)
}

/// A Checkout Session's `discounts`: `[{coupon, promotion_code}]`.
pub(super) fn session_entries(wanted: &[Wanted]) -> Value {
    let entries: Vec<Value> = wanted
        .iter()
        .filter_map(|w| match w {
            Wanted::New {
                coupon,
                promotion_code,
            } => Some(json!({"coupon": coupon, "promotion_code": promotion_code})),
            Wanted::Keep(_) => None,
        })
        .collect();
    json!(entries)
}

pub(super) fn ids_of(object: &Value) -> Vec<String> {
    object["discounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|id| id.as_str().map(str::to_owned))
        .collect()
}

fn add_months(from: i64, months: u64) -> i64 {
    DateTime::<Utc>::from_timestamp(from, 0)
        .and_then(|t| t.checked_add_months(Months::new(months as u32)))
        .map_or(from, |t| t.timestamp())
}
