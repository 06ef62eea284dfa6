//! The status changes Stripe makes on its own after a subscription started: retries run out
//! (`past_due` → `unpaid`), the first payment never came (`incomplete` →
//! `incomplete_expired`), a trial ended without a payment method (`paused`) and the
//! subscription is resumed (`active`, a new period, a paid invoice).
//!
//! Each returns its events in Stripe's order; a refused change changes nothing.

use serde_json::{Value, json};

use super::api::ApiError;
use super::billing::{self, NewInvoice};
use super::discount_amounts;
use super::discounts;
use super::intents::{self, Outcome};
use super::lifecycle::{next_invoice_number, start_periods, updated_event};
use super::state::State;
use super::webhooks::{EventRequest, PendingEvent};

/// See [`super::FakeStripe::mark_unpaid`].
pub(super) fn mark_unpaid(state: &mut State, id: &str) -> Result<Vec<PendingEvent>, ApiError> {
    let before = in_status(state, id, &["past_due"])?;
    let mut after = before.clone();
    after["status"] = json!("unpaid");
    state.subscriptions.insert(id.to_owned(), after.clone());
    Ok(updated_event(&before, &after, &EventRequest::default())
        .into_iter()
        .collect())
}

/// See [`super::FakeStripe::expire_incomplete`].
pub(super) fn expire_incomplete(
    state: &mut State,
    id: &str,
) -> Result<Vec<PendingEvent>, ApiError> {
    let before = in_status(state, id, &["incomplete"])?;
    let now = state.now();
    let mut after = before.clone();
    after["status"] = json!("incomplete_expired");
    after["ended_at"] = json!(now);
    state.subscriptions.insert(id.to_owned(), after.clone());
    let mut events: Vec<PendingEvent> = updated_event(&before, &after, &EventRequest::default())
        .into_iter()
        .collect();
    let invoice_id = after["latest_invoice"].as_str().unwrap_or_default();
    if let Some(invoice) = state.invoices.get_mut(invoice_id)
        && invoice["status"] == "open"
    {
        billing::mark_void(invoice, now);
        let voided = PendingEvent::new("invoice.voided", invoice, &EventRequest::default());
        intents::cancel(state, invoice_id);
        events.push(voided);
    }
    Ok(events)
}

/// See [`super::FakeStripe::pause_subscription`].
pub(super) fn pause(state: &mut State, id: &str) -> Result<Vec<PendingEvent>, ApiError> {
    let before = in_status(state, id, &["active", "trialing", "past_due"])?;
    let mut after = before.clone();
    after["status"] = json!("paused");
    state.subscriptions.insert(id.to_owned(), after.clone());
    let request = EventRequest::default();
    let mut events = vec![PendingEvent::new(
        "customer.subscription.paused",
        &after,
        &request,
    )];
    events.extend(updated_event(&before, &after, &request));
    Ok(events)
}

/// See [`super::FakeStripe::resume_subscription`]; returns the subscription too (the API
/// answers with it).
pub(super) fn resume(
    state: &mut State,
    id: &str,
    request: &EventRequest,
) -> Result<(Value, Vec<PendingEvent>), ApiError> {
    let before = state
        .subscriptions
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::no_such("subscription", id, "id"))?;
    if before["status"] != "paused" {
        return Err(ApiError::invalid(
            format!(
                "Subscription {id} cannot be resumed: it is {}, not paused.",
                before["status"]
            ),
            None,
        ));
    }
    let now = state.now();
    let (discount_ids, ended) = discounts::current(state, id, now);
    let invoice_id = state.id("in");
    let mut after = before.clone();
    after["discounts"] = json!(discount_ids);
    let mut items = after["items"]["data"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let lines = start_periods(state, &invoice_id, &mut items, &after["metadata"], |_| now);
    after["items"] = billing::items_list(id, items);
    after["status"] = json!("active");
    after["billing_cycle_anchor"] = json!(now);
    after["latest_invoice"] = json!(invoice_id);
    let invoice = paid_invoice(state, &after, &invoice_id, lines, &discount_ids);
    state.subscriptions.insert(id.to_owned(), after.clone());
    if invoice["amount_paid"].as_i64().unwrap_or(0) > 0 {
        let pm = intents::payment_method_of(state, &after);
        intents::charge(state, &invoice_id, pm.as_deref(), Outcome::Succeeded);
    }
    let mut events: Vec<PendingEvent> = ended
        .into_iter()
        .map(|mut e| {
            e.request = request.clone();
            e
        })
        .collect();
    events.push(PendingEvent::new(
        "customer.subscription.resumed",
        &after,
        request,
    ));
    events.extend(updated_event(&before, &after, request));
    events.push(PendingEvent::new("invoice.paid", &invoice, request));
    Ok((after, events))
}

/// The `subscription_update` invoice of a resumed subscription, finalized and paid, stored.
fn paid_invoice(
    state: &mut State,
    sub: &Value,
    invoice_id: &str,
    lines: Vec<Value>,
    discount_ids: &[String],
) -> Value {
    let now = state.now();
    let customer_id = sub["customer"].as_str().unwrap_or_default().to_owned();
    let customer = state
        .customers
        .get(&customer_id)
        .cloned()
        .unwrap_or(Value::Null);
    let mut invoice = billing::invoice(NewInvoice {
        id: invoice_id,
        created: now,
        customer: &customer,
        currency: &sub["currency"],
        billing_reason: "subscription_update",
        subscription: Some((sub["id"].as_str().unwrap_or_default(), &sub["metadata"])),
        period: (now, now),
        lines,
    });
    discount_amounts::apply(state, &mut invoice, discount_ids);
    let number = next_invoice_number(state, &customer_id);
    billing::finalize(&mut invoice, now, &number, true);
    invoice["attempt_count"] = json!(1);
    state
        .invoices
        .insert(invoice_id.to_owned(), invoice.clone());
    invoice
}

/// Subscription `id` if its status is one of `statuses`, else why not.
fn in_status(state: &State, id: &str, statuses: &[&str]) -> Result<Value, ApiError> {
    let sub = state
        .subscriptions
        .get(id)
        .ok_or_else(|| ApiError::no_such("subscription", id, "id"))?;
    let status = sub["status"].as_str().unwrap_or_default();
    if !statuses.contains(&status) {
        return Err(ApiError::invalid(
            format!(
                "Subscription {id} is {status}; this needs it {}.",
                statuses.join(" or ")
            ),
            None,
        ));
    }
    Ok(sub.clone())
}
