//! Invoices and invoice items: adding items to a draft and renewing a subscription (a draft
//! `subscription_cycle` invoice). Charging invoices is in `payments.rs`.
//!
//! An invoice item created without `invoice` is pending: the customer's next renewal
//! invoice picks it up, as Stripe's does; one made for a subscription (a proration, or
//! `subscription=` on create) waits for that subscription's. [`draft_pending`] and
//! [`collect`] invoice a subscription's pending items at once (`always_invoice`,
//! `invoice_now`).

use serde_json::{Value, json};

use super::api::{Answer, ApiError, integer, required};
use super::billing::{self, NewInvoice};
use super::discount_amounts;
use super::discounts;
use super::expand;
use super::form::{Form, MetadataUpdate};
use super::lifecycle::{next_invoice_number, start_periods};
use super::lines::{self, NewInvoiceItem};
use super::payments;
use super::prorations;
use super::state::State;
use super::trials;
use super::webhooks::{EventRequest, PendingEvent};

/// `GET /v1/invoices/{id}`, with `expand[]` (see `expand.rs`).
pub(super) fn retrieve(state: &State, params: &Form, id: &str) -> Result<Answer, ApiError> {
    let invoice = state
        .invoices
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::no_such("invoice", id, "id"))?;
    Ok(Answer::quiet(expand::invoice(state, invoice, params)?))
}

pub(super) fn create_item(state: &mut State, params: &Form) -> Result<Answer, ApiError> {
    let customer = required(params, "customer")?;
    if !state.customers.contains_key(customer) {
        return Err(ApiError::no_such("customer", customer, "customer"));
    }
    let invoice_id = params.get("invoice");
    if let Some(id) = invoice_id {
        let invoice = state
            .invoices
            .get(id)
            .ok_or_else(|| ApiError::no_such("invoice", id, "invoice"))?;
        if invoice["status"] != "draft" {
            return Err(ApiError::invalid(
                format!(
                    "You can only add invoice items to draft invoices. Invoice {id} is {}.",
                    invoice["status"]
                ),
                Some("invoice"),
            ));
        }
    }
    let quantity = integer(params, "quantity")?.unwrap_or(1);
    let id = state.id("ii");
    let (price, currency, unit) = match params.get("price").or(params.get("pricing[price]")) {
        Some(price_id) => {
            let price = state
                .prices
                .get(price_id)
                .ok_or_else(|| ApiError::no_such("price", price_id, "price"))?;
            let unit = price["unit_amount"].as_i64().unwrap_or(0) as f64;
            let product = price["product"].as_str().unwrap_or_default().to_owned();
            let currency = price["currency"].as_str().unwrap_or("usd").to_owned();
            ((price_id.to_owned(), product), currency, unit)
        }
        None => {
            let currency = required(params, "currency")?.to_lowercase();
            let unit = match (
                integer(params, "amount")?,
                params.get("unit_amount_decimal"),
            ) {
                (Some(amount), _) => amount as f64 / quantity.max(1) as f64,
                (None, Some(decimal)) => decimal.parse().map_err(|_| {
                    ApiError::invalid(
                        "Invalid decimal: unit_amount_decimal",
                        Some("unit_amount_decimal"),
                    )
                })?,
                (None, None) => return Err(ApiError::missing_param("amount")),
            };
            // Stripe prices an amount-only item with an inline price of its own.
            ((state.id("price"), state.id("prod")), currency, unit)
        }
    };
    let amount = match integer(params, "amount")? {
        Some(amount) => amount,
        None => (unit * quantity as f64).round() as i64,
    };
    let item = lines::invoice_item(NewInvoiceItem {
        id: &id,
        created: state.now(),
        customer,
        invoice: invoice_id,
        subscription: params.get("subscription"),
        currency: &currency,
        quantity,
        unit_amount_decimal: lines::decimal(unit),
        amount,
        price,
        description: params.get("description"),
        metadata: MetadataUpdate::new_object(params.metadata("metadata").as_ref()),
    });
    if let Some(invoice_id) = invoice_id {
        attach(state, invoice_id, &item);
    }
    state.invoice_items.insert(id, item.clone());
    Ok(Answer::quiet(item))
}

/// Adds `item` as a line of draft `invoice_id` and recomputes the totals (its discounts
/// included).
fn attach(state: &mut State, invoice_id: &str, item: &Value) {
    let line_id = state.id("il");
    let Some(mut invoice) = state.invoices.get(invoice_id).cloned() else {
        return;
    };
    let mut item = item.clone();
    item["invoice"] = json!(invoice_id);
    let line = lines::invoice_item_line(&line_id, &item);
    if let Some(lines) = invoice["lines"]["data"].as_array_mut() {
        lines.push(line);
    }
    discount_amounts::price(state, &mut invoice);
    state.invoices.insert(invoice_id.to_owned(), invoice);
}

/// See [`super::FakeStripe::renew`]; returns the draft invoice and its events: a
/// `customer.discount.deleted` for each discount that ended, then `invoice.created`.
pub(super) fn renew(
    state: &mut State,
    subscription_id: &str,
) -> Result<(String, Vec<PendingEvent>), ApiError> {
    let before = state
        .subscriptions
        .get(subscription_id)
        .cloned()
        .ok_or_else(|| ApiError::no_such("subscription", subscription_id, "id"))?;
    if !matches!(
        before["status"].as_str(),
        Some("active" | "past_due" | "trialing")
    ) {
        return Err(ApiError::invalid(
            format!(
                "Subscription {subscription_id} is {} and does not renew.",
                before["status"]
            ),
            None,
        ));
    }
    if trials::in_trial(&before) {
        return Err(ApiError::invalid(
            format!(
                "Subscription {subscription_id} is in a trial: its trial ends first \
                 (FakeStripe::end_trial or tick)."
            ),
            None,
        ));
    }
    let mut sub = before.clone();
    let now = state.now();
    // The new period starts where the old one ended.
    let next_start = |item: &Value| item["current_period_end"].as_i64().unwrap_or(now);
    let mut old_period = (i64::MAX, 0);
    for item in sub["items"]["data"].as_array().into_iter().flatten() {
        let start = next_start(item);
        let old_start = item["current_period_start"].as_i64().unwrap_or(start);
        old_period = (old_period.0.min(old_start), old_period.1.max(start));
    }
    let (invoice_id, mut events) = open_cycle(
        state,
        &mut sub,
        next_start,
        "subscription_cycle",
        old_period,
    );
    state.subscriptions.insert(subscription_id.to_owned(), sub);
    state.before_renewal.insert(invoice_id.clone(), before);
    let invoice = &state.invoices[&invoice_id];
    events.push(PendingEvent::new(
        "invoice.created",
        invoice,
        &EventRequest::default(),
    ));
    Ok((invoice_id, events))
}

/// A new draft invoice for the next period of `sub` (not stored here; it is changed to point
/// at the invoice): each item moves to a period starting at `start(item)` (one interval of
/// its price), billed by a line; the customer's pending invoice items that go with the
/// subscription are added; the subscription's discounts that still apply at the earliest
/// start take their part (see `discounts.rs` and `discount_amounts.rs`). The invoice is
/// stored. Returns its id and a `customer.discount.deleted` for each discount that ended
/// (removed from `sub` too).
pub(super) fn open_cycle(
    state: &mut State,
    sub: &mut Value,
    start: impl Fn(&Value) -> i64,
    billing_reason: &str,
    period: (i64, i64),
) -> (String, Vec<PendingEvent>) {
    let subscription_id = sub["id"].as_str().unwrap_or_default().to_owned();
    let invoice_id = state.id("in");
    let now = state.now();
    let mut items = sub["items"]["data"].as_array().cloned().unwrap_or_default();
    let at = items.iter().map(&start).min().unwrap_or(now);
    let (kept, ended) = discounts::current(state, &subscription_id, at);
    sub["discounts"] = json!(kept);
    let lines = start_periods(state, &invoice_id, &mut items, &sub["metadata"], start);
    sub["items"] = billing::items_list(&subscription_id, items);
    sub["latest_invoice"] = json!(invoice_id);
    let customer_id = sub["customer"].as_str().unwrap_or_default().to_owned();
    let customer = state
        .customers
        .get(&customer_id)
        .cloned()
        .unwrap_or(Value::Null);
    let mut invoice = billing::invoice(NewInvoice {
        id: &invoice_id,
        created: now,
        customer: &customer,
        currency: &sub["currency"],
        billing_reason,
        subscription: Some((&subscription_id, &sub["metadata"])),
        period,
        lines,
    });
    invoice["discounts"] = json!(kept);
    state.invoices.insert(invoice_id.clone(), invoice);
    let pending: Vec<Value> = state
        .invoice_items
        .values_mut()
        .filter(|i| renews_with(i, &customer_id, &subscription_id))
        .map(|i| {
            i["invoice"] = json!(invoice_id);
            i.clone()
        })
        .collect();
    for item in &pending {
        attach(state, &invoice_id, item);
    }
    let mut invoice = state.invoices[&invoice_id].clone();
    discount_amounts::apply(state, &mut invoice, &kept);
    state.invoices.insert(invoice_id.clone(), invoice);
    (invoice_id, ended)
}

/// Whether pending invoice item `item` goes on the renewal of `subscription` of `customer`:
/// one of the customer's not made for another subscription.
fn renews_with(item: &Value, customer: &str, subscription: &str) -> bool {
    let made_for = &item["parent"]["subscription_details"]["subscription"];
    item["customer"] == customer
        && item["invoice"].is_null()
        && (made_for.is_null() || made_for == subscription)
}

/// The subscription's pending invoice items on a new draft invoice (`billing_reason` as
/// given, its period the moment it is made), stored; the subscription's `latest_invoice`
/// now points at it. `None` when nothing is pending. Returns the draft as made, for its
/// `invoice.created`.
pub(super) fn draft_pending(
    state: &mut State,
    subscription_id: &str,
    billing_reason: &str,
) -> Option<Value> {
    let sub = state.subscriptions.get(subscription_id)?.clone();
    let pending: Vec<Value> = state
        .invoice_items
        .values()
        .filter(|item| prorations::pending_for(item, subscription_id))
        .cloned()
        .collect();
    if pending.is_empty() {
        return None;
    }
    let (now, invoice_id) = (state.now(), state.id("in"));
    let customer = sub["customer"]
        .as_str()
        .and_then(|id| state.customers.get(id))
        .cloned()
        .unwrap_or(Value::Null);
    let invoice = billing::invoice(NewInvoice {
        id: &invoice_id,
        created: now,
        customer: &customer,
        currency: &sub["currency"],
        billing_reason,
        subscription: Some((subscription_id, &sub["metadata"])),
        period: (now, now),
        lines: Vec::new(),
    });
    state.invoices.insert(invoice_id.clone(), invoice);
    for mut item in pending {
        item["invoice"] = json!(invoice_id);
        let id = item["id"].as_str().unwrap_or_default().to_owned();
        state.invoice_items.insert(id, item.clone());
        attach(state, &invoice_id, &item);
    }
    if let Some(sub) = state.subscriptions.get_mut(subscription_id) {
        sub["latest_invoice"] = json!(invoice_id);
    }
    state.invoices.get(&invoice_id).cloned()
}

/// Collects draft `invoice_id` as Stripe does an invoice made at once: an amount due is
/// charged to the subscription's payment method (see `payments::charge`: `invoice.paid`, or
/// the failure's events); nothing due is paid at finalization without a charge, a negative
/// total going to the customer's credit balance (`ending_balance`, customer `balance`):
/// `invoice.paid`. Later invoices do not draw on that balance in the fake.
pub(super) fn collect(state: &mut State, invoice_id: &str) -> Result<Vec<PendingEvent>, ApiError> {
    let invoice = state
        .invoices
        .get(invoice_id)
        .cloned()
        .ok_or_else(|| ApiError::no_such("invoice", invoice_id, "id"))?;
    let total = invoice["total"].as_i64().unwrap_or(0);
    if total > 0 {
        return payments::charge(state, invoice_id);
    }
    let mut invoice = invoice;
    let customer = invoice["customer"].as_str().unwrap_or_default().to_owned();
    let number = next_invoice_number(state, &customer);
    invoice["amount_due"] = json!(0);
    billing::finalize(&mut invoice, state.now(), &number, true);
    invoice["ending_balance"] = json!(total);
    if let Some(customer) = state.customers.get_mut(&customer) {
        customer["balance"] = json!(customer["balance"].as_i64().unwrap_or(0) + total);
    }
    state
        .invoices
        .insert(invoice_id.to_owned(), invoice.clone());
    Ok(vec![PendingEvent::new(
        "invoice.paid",
        &invoice,
        &EventRequest::default(),
    )])
}

/// The events of a draft from [`draft_pending`] collected at once, all set off by
/// `request`: `invoice.created` (the draft as made), then [`collect`]'s.
pub(super) fn collect_now(
    state: &mut State,
    draft: &Value,
    request: &EventRequest,
) -> Result<Vec<PendingEvent>, ApiError> {
    let invoice_id = draft["id"].as_str().unwrap_or_default();
    let mut events = vec![PendingEvent::new("invoice.created", draft, request)];
    for mut event in collect(state, invoice_id)? {
        event.request = request.clone();
        events.push(event);
    }
    Ok(events)
}
