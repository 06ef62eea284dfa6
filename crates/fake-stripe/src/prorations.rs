//! Prorations: what a change in the middle of a period credits and charges, as pending
//! invoice items (`proration: true`) that the subscription's next invoice picks up.
//!
//! Stripe prorates on the item's current period, in whole seconds of the fake's clock: the
//! part still to come is `remaining / length`, `remaining = period_end - now`,
//! `length = period_end - period_start`. An item whose price or quantity changes gets two
//! invoice items, as Stripe makes them: a credit for the unused time at the old price × old
//! quantity ("Unused time on Pro after 15 Jan 2027", negative), then a charge for the
//! remaining time at the new price × new quantity ("Remaining time on 3 × Team after ...").
//! An added item gets only the charge, a removed one only the credit; canceling with
//! `prorate=true` credits every item. Each invoice item covers `now..period_end`.
//!
//! Rounding: like Stripe, each proration is rounded on its own to a whole amount of the
//! currency's smallest unit (cents), not the net of the pair. The fake rounds half away from
//! zero, in integers: `round(unit_amount × quantity × remaining / length)`; a credit and a
//! charge of the same size cancel exactly.
//!
//! Only a subscription whose period was paid for (`active`, `past_due`) prorates: a trial or
//! an unpaid first invoice has nothing to credit.

use chrono::DateTime;
use serde_json::{Value, json};

use super::api::ApiError;
use super::form::Form;
use super::lines::{self, NewInvoiceItem};
use super::state::State;
use super::webhooks::{EventRequest, PendingEvent};

/// `proration_behavior` on `POST /v1/subscriptions/{id}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Behavior {
    /// Stripe's default: prorations wait as pending invoice items for the next invoice.
    CreateProrations,
    /// No prorations: the new price is billed from the next period on.
    None,
    /// The prorations (and anything else pending for the subscription) are invoiced and
    /// charged at once.
    AlwaysInvoice,
}

impl Behavior {
    /// The parameter, `create_prorations` when absent; any other value is Stripe's 400.
    pub(super) fn from(params: &Form) -> Result<Self, ApiError> {
        match params.get("proration_behavior") {
            None | Some("create_prorations") => Ok(Self::CreateProrations),
            Some("none") => Ok(Self::None),
            Some("always_invoice") => Ok(Self::AlwaysInvoice),
            Some(_) => Err(ApiError::invalid(
                "Invalid proration_behavior: must be one of always_invoice, create_prorations, \
                 or none",
                Some("proration_behavior"),
            )),
        }
    }
}

/// Whether the subscription's current period was paid for, so a change prorates.
pub(super) fn applies(sub: &Value) -> bool {
    matches!(sub["status"].as_str(), Some("active" | "past_due"))
}

/// The prorations of changing `sub`'s items from `before` to `after` (matched by item id),
/// stored as pending invoice items and returned in order.
pub(super) fn for_change(
    state: &mut State,
    sub: &Value,
    before: &[Value],
    after: &[Value],
) -> Vec<Value> {
    let mut made = Vec::new();
    for old in before {
        let new = after.iter().find(|item| item["id"] == old["id"]);
        if new.is_some_and(|new| !changed(old, new)) {
            continue;
        }
        made.extend(proration(state, sub, old, Side::Credit));
        made.extend(new.and_then(|new| proration(state, sub, new, Side::Charge)));
    }
    for new in after {
        if !before.iter().any(|old| old["id"] == new["id"]) {
            made.extend(proration(state, sub, new, Side::Charge));
        }
    }
    made
}

/// The credits for the unused time of every item of `sub`, canceled now with `prorate=true`.
pub(super) fn for_cancel(state: &mut State, sub: &Value) -> Vec<Value> {
    let items = sub["items"]["data"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .filter_map(|item| proration(state, sub, item, Side::Credit))
        .collect()
}

/// Canceling at once without `prorate` or `invoice_now` drops the subscription's pending
/// prorations, as Stripe does: they are deleted, `invoiceitem.deleted` each.
pub(super) fn discard_pending(
    state: &mut State,
    subscription: &str,
    request: &EventRequest,
) -> Vec<PendingEvent> {
    let ids: Vec<String> = state
        .invoice_items
        .values()
        .filter(|item| item["proration"] == true && pending_for(item, subscription))
        .filter_map(|item| item["id"].as_str().map(str::to_owned))
        .collect();
    ids.iter()
        .filter_map(|id| state.invoice_items.remove(id))
        .map(|item| PendingEvent::new("invoiceitem.deleted", &item, request))
        .collect()
}

/// `invoiceitem.created` for each new invoice item.
pub(super) fn created_events(items: &[Value], request: &EventRequest) -> Vec<PendingEvent> {
    items
        .iter()
        .map(|item| PendingEvent::new("invoiceitem.created", item, request))
        .collect()
}

/// Whether invoice item `item` waits for the next invoice of `subscription`: not invoiced,
/// and made for that subscription.
pub(super) fn pending_for(item: &Value, subscription: &str) -> bool {
    item["invoice"].is_null()
        && item["parent"]["subscription_details"]["subscription"] == subscription
}

/// `amount × remaining / length`, rounded half away from zero (see the module's doc).
pub(super) fn prorate(amount: i64, remaining: i64, length: i64) -> i64 {
    if length <= 0 {
        return 0;
    }
    let (numerator, length) = (
        i128::from(amount) * i128::from(remaining.clamp(0, length)),
        i128::from(length),
    );
    let rounded = (numerator.abs() * 2 + length) / (2 * length);
    (rounded * numerator.signum()) as i64
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The unused time at what the item was: negative.
    Credit,
    /// The remaining time at what the item is now.
    Charge,
}

fn changed(old: &Value, new: &Value) -> bool {
    old["price"]["id"] != new["price"]["id"] || old["quantity"] != new["quantity"]
}

/// One proration of subscription item `item`, stored; `None` once its period is over.
fn proration(state: &mut State, sub: &Value, item: &Value, side: Side) -> Option<Value> {
    let now = state.now();
    let (start, end) = (
        item["current_period_start"].as_i64()?,
        item["current_period_end"].as_i64()?,
    );
    if end <= now || end <= start {
        return None;
    }
    let price = &item["price"];
    let quantity = item["quantity"].as_i64().unwrap_or(1);
    let full = price["unit_amount"].as_i64().unwrap_or(0) * quantity;
    let amount = match side {
        Side::Credit => -prorate(full, end - now, end - start),
        Side::Charge => prorate(full, end - now, end - start),
    };
    let id = state.id("ii");
    let description = describe(state, item, side, now);
    let mut made = lines::invoice_item(NewInvoiceItem {
        id: &id,
        created: now,
        customer: sub["customer"].as_str().unwrap_or_default(),
        invoice: None,
        subscription: sub["id"].as_str(),
        currency: price["currency"].as_str().unwrap_or("usd"),
        quantity,
        unit_amount_decimal: lines::decimal(amount as f64 / quantity.max(1) as f64),
        amount,
        price: (
            price["id"].as_str().unwrap_or_default().to_owned(),
            price["product"].as_str().unwrap_or_default().to_owned(),
        ),
        description: Some(&description),
        metadata: json!({}),
    });
    made["proration"] = json!(true);
    made["discountable"] = json!(false);
    made["period"] = json!({"end": end, "start": now});
    made["parent"]["subscription_details"]["subscription_item"] = item["id"].clone();
    if side == Side::Credit {
        made["proration_details"]["credited_items"] = credited(state, item, now);
    }
    state.invoice_items.insert(id, made.clone());
    Some(made)
}

/// "Unused time on Pro after 15 Jan 2027", "Remaining time on 3 × Team after 15 Jan 2027".
fn describe(state: &State, item: &Value, side: Side, now: i64) -> String {
    let price = &item["price"];
    let name = price["product"]
        .as_str()
        .and_then(|p| state.products.get(p))
        .and_then(|p| p["name"].as_str())
        .or(price["nickname"].as_str())
        .unwrap_or("Subscription item");
    let quantity = item["quantity"].as_i64().unwrap_or(1);
    let what = if quantity == 1 {
        name.to_owned()
    } else {
        format!("{quantity} × {name}")
    };
    let when = DateTime::from_timestamp(now, 0).unwrap_or_default();
    let time = match side {
        Side::Credit => "Unused time",
        Side::Charge => "Remaining time",
    };
    format!("{time} on {what} after {}", when.format("%d %b %Y"))
}

/// What a credit for `item` takes back: the pending proration that charged for what it is
/// now (an earlier change this period), else the newest invoice line that billed it for the
/// time running now, else nothing known.
fn credited(state: &State, item: &Value, now: i64) -> Value {
    let item_id = &item["id"];
    let charged = state.invoice_items.values().rev().find_map(|pending| {
        let charges = pending["invoice"].is_null()
            && pending["proration"] == true
            && pending["parent"]["subscription_details"]["subscription_item"] == *item_id
            && pending["amount"].as_i64().is_some_and(|a| a > 0);
        charges.then(|| {
            json!({
                "invoice_item": pending["id"], "invoice_line_item_details": null,
                "type": "invoice_item"
            })
        })
    });
    let billed = || {
        state.invoices.values().rev().find_map(|invoice| {
            let lines = invoice["lines"]["data"].as_array()?;
            let line = lines.iter().find(|line| {
                let period = &line["period"];
                line["parent"]["subscription_item_details"]["subscription_item"] == *item_id
                    && line["amount"].as_i64().is_some_and(|a| a > 0)
                    && period["start"].as_i64().is_some_and(|s| s <= now)
                    && period["end"].as_i64().is_some_and(|e| now < e)
            })?;
            Some(json!({
                "invoice_item": null,
                "invoice_line_item_details": {
                    "invoice": invoice["id"], "invoice_line_items": [line["id"]]
                },
                "type": "invoice_line_items"
            }))
        })
    };
    charged.or_else(billed).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::prorate;

    #[test]
    fn prorations_round_half_away_from_zero() {
        assert_eq!(prorate(3000, 50, 100), 1500);
        assert_eq!(prorate(-1000, 50, 100), -500);
        // 1000 × 1/3 = 333.33… and 2000 × 1/3 = 666.67
        assert_eq!(prorate(1000, 1, 3), 333);
        assert_eq!(prorate(2000, 1, 3), 667);
        assert_eq!(prorate(-2000, 1, 3), -667);
        // Exactly half a cent: away from zero both ways.
        assert_eq!(prorate(1, 1, 2), 1);
        assert_eq!(prorate(-1, 1, 2), -1);
        assert_eq!(prorate(1000, 0, 100), 0);
        assert_eq!(prorate(1000, 100, 100), 1000);
        assert_eq!(prorate(1000, 150, 100), 1000, "never more than the period");
        assert_eq!(prorate(1000, 10, 0), 0);
    }
}
