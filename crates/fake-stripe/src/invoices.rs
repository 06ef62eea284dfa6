//! Invoices and invoice items: adding items to a draft and renewing a subscription (a draft
//! `subscription_cycle` invoice). Charging invoices is in `payments.rs`.
//!
//! An invoice item created without `invoice` is pending: the customer's next renewal
//! invoice picks it up, as Stripe's does.

use serde_json::{Value, json};

use super::api::{Answer, ApiError, integer, required};
use super::billing::{self, NewInvoice};
use super::expand;
use super::form::{Form, MetadataUpdate};
use super::lifecycle::start_periods;
use super::lines::{self, NewInvoiceItem};
use super::state::State;
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
        unit_amount_decimal: trim_decimal(unit),
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

/// Adds `item` as a line of draft `invoice_id` and recomputes the totals.
fn attach(state: &mut State, invoice_id: &str, item: &Value) {
    let line_id = state.id("il");
    let Some(invoice) = state.invoices.get_mut(invoice_id) else {
        return;
    };
    let mut item = item.clone();
    item["invoice"] = json!(invoice_id);
    let line = lines::invoice_item_line(&line_id, &item);
    if let Some(lines) = invoice["lines"]["data"].as_array_mut() {
        lines.push(line);
    }
    billing::recompute_totals(invoice);
}

/// See [`super::FakeStripe::renew`]; returns the draft invoice and its events.
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
    let mut sub = before.clone();
    let invoice_id = state.id("in");
    let mut old_period = (i64::MAX, 0);
    let mut items = sub["items"]["data"].as_array().cloned().unwrap_or_default();
    let now = state.now();
    // The new period starts where the old one ended.
    let next_start = |item: &Value| item["current_period_end"].as_i64().unwrap_or(now);
    for item in &items {
        let start = next_start(item);
        let old_start = item["current_period_start"].as_i64().unwrap_or(start);
        old_period = (old_period.0.min(old_start), old_period.1.max(start));
    }
    let lines = start_periods(state, &invoice_id, &mut items, &sub["metadata"], next_start);
    sub["items"] = billing::items_list(subscription_id, items);
    sub["latest_invoice"] = json!(invoice_id);
    let customer_id = sub["customer"].as_str().unwrap_or_default().to_owned();
    let customer = state
        .customers
        .get(&customer_id)
        .cloned()
        .unwrap_or(Value::Null);
    let invoice = billing::invoice(NewInvoice {
        id: &invoice_id,
        created: state.now(),
        customer: &customer,
        currency: &sub["currency"],
        billing_reason: "subscription_cycle",
        subscription: Some((subscription_id, &sub["metadata"])),
        period: old_period,
        lines,
    });
    state.invoices.insert(invoice_id.clone(), invoice);
    let pending: Vec<Value> = state
        .invoice_items
        .values_mut()
        .filter(|i| i["customer"] == customer_id.as_str() && i["invoice"].is_null())
        .map(|i| {
            i["invoice"] = json!(invoice_id);
            i.clone()
        })
        .collect();
    for item in &pending {
        attach(state, &invoice_id, item);
    }
    state.subscriptions.insert(subscription_id.to_owned(), sub);
    state.before_renewal.insert(invoice_id.clone(), before);
    let invoice = &state.invoices[&invoice_id];
    let event = PendingEvent::new("invoice.created", invoice, &EventRequest::default());
    Ok((invoice_id, vec![event]))
}

/// `2000` for 2000.0, `12.5` for 12.5: Stripe's decimal strings.
fn trim_decimal(value: f64) -> String {
    let text = format!("{value:.12}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}
