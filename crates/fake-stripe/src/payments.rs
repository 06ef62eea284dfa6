//! Charging an invoice after its subscription started, and what the outcome does to the
//! invoice, its PaymentIntent, the subscription and (for a first invoice paid by a bank
//! debit at checkout) the Checkout Session.
//!
//! Paid: the customer paid on the hosted invoice page or authenticated 3-D Secure
//! ([`pay`]), or a processing debit settled ([`settle`]). Failed: a declined charge
//! ([`fail`]) or a bounced debit; a failed renewal makes an `active`/`trialing`
//! subscription `past_due`. Waiting: 3-D Secure needed or a debit processing ([`charge`]).

use serde_json::{Value, json};

use super::api::ApiError;
use super::billing::{self, RETRY_AFTER};
use super::intents::{self, Outcome};
use super::lifecycle::{next_invoice_number, updated_event};
use super::state::State;
use super::webhooks::{EventRequest, PendingEvent};
use super::{PaymentMethodKind, PaymentMethodKind::ThreeDSecure};

/// See [`super::FakeStripe::pay_invoice`].
pub(super) fn pay(state: &mut State, invoice_id: &str) -> Result<Vec<PendingEvent>, ApiError> {
    let mut invoice = chargeable(state, invoice_id)?;
    let number = number_of(state, &invoice);
    let attempts = invoice["attempt_count"].as_u64().unwrap_or(0);
    billing::finalize(&mut invoice, state.now(), &number, true);
    invoice["attempt_count"] = json!(attempts + 1);
    Ok(record_paid(state, invoice))
}

/// See [`super::FakeStripe::fail_invoice_payment`].
pub(super) fn fail(state: &mut State, invoice_id: &str) -> Result<Vec<PendingEvent>, ApiError> {
    fail_as(state, invoice_id, Outcome::Declined)
}

/// A charge that could not be attempted (no payment method, as when a trial ends without
/// one and `create_invoice`): as [`fail`], but the PaymentIntent has no `last_payment_error`.
pub(super) fn fail_unattempted(
    state: &mut State,
    invoice_id: &str,
) -> Result<Vec<PendingEvent>, ApiError> {
    fail_as(state, invoice_id, Outcome::NotAttempted)
}

fn fail_as(
    state: &mut State,
    invoice_id: &str,
    outcome: Outcome,
) -> Result<Vec<PendingEvent>, ApiError> {
    let mut invoice = chargeable(state, invoice_id)?;
    reopen(state, &mut invoice);
    state
        .invoices
        .insert(invoice_id.to_owned(), invoice.clone());
    let pm = payment_method(state, &invoice);
    intents::charge(state, invoice_id, pm.as_deref(), outcome);
    let mut events = vec![event("invoice.payment_failed", &invoice)];
    events.extend(past_due(state, &invoice));
    Ok(events)
}

/// See [`super::FakeStripe::charge_invoice`].
pub(super) fn charge(state: &mut State, invoice_id: &str) -> Result<Vec<PendingEvent>, ApiError> {
    let mut invoice = chargeable(state, invoice_id)?;
    let pm = subscription_of(state, &invoice).and_then(|s| intents::payment_method_of(state, s));
    match intents::outcome_of(intents::kind_of(state, pm.as_deref())) {
        Outcome::Succeeded => pay(state, invoice_id),
        Outcome::Declined | Outcome::DebitFailed | Outcome::NotAttempted => fail(state, invoice_id),
        outcome @ (Outcome::RequiresAction | Outcome::Processing) => {
            reopen(state, &mut invoice);
            if outcome == Outcome::Processing {
                invoice["next_payment_attempt"] = Value::Null;
            }
            state
                .invoices
                .insert(invoice_id.to_owned(), invoice.clone());
            intents::charge(state, invoice_id, pm.as_deref(), outcome);
            if outcome == Outcome::Processing {
                return Ok(Vec::new());
            }
            let mut events = vec![event("invoice.payment_action_required", &invoice)];
            events.extend(past_due(state, &invoice));
            Ok(events)
        }
    }
}

/// See [`super::FakeStripe::settle_async_payment`].
pub(super) fn settle(
    state: &mut State,
    invoice_id: &str,
    succeeded: bool,
) -> Result<Vec<PendingEvent>, ApiError> {
    let mut invoice = state
        .invoices
        .get(invoice_id)
        .cloned()
        .ok_or_else(|| ApiError::no_such("invoice", invoice_id, "id"))?;
    let status = intents::of_invoice(state, invoice_id).map(|pi| pi["status"].clone());
    if status.as_ref().is_none_or(|s| s != "processing") {
        return Err(ApiError::invalid(
            format!("Invoice {invoice_id} has no processing payment (PaymentIntent: {status:?})."),
            None,
        ));
    }
    let session = checkout_of_first_invoice(state, &invoice);
    let mut events;
    if succeeded {
        billing::mark_paid(&mut invoice, state.now());
        events = record_paid(state, invoice);
    } else {
        let pm = payment_method(state, &invoice);
        intents::charge(state, invoice_id, pm.as_deref(), Outcome::DebitFailed);
        let attempts = invoice["attempt_count"].as_u64().unwrap_or(0).max(1);
        invoice["attempt_count"] = json!(attempts);
        state
            .invoices
            .insert(invoice_id.to_owned(), invoice.clone());
        events = vec![event("invoice.payment_failed", &invoice)];
        events.extend(past_due(state, &invoice));
    }
    if let Some(session) = session.and_then(|id| state.sessions.get_mut(&id)) {
        let type_ = if succeeded {
            session["payment_status"] = json!("paid");
            "checkout.session.async_payment_succeeded"
        } else {
            "checkout.session.async_payment_failed"
        };
        events.push(event(type_, session));
    }
    Ok(events)
}

/// The invoice (finalized, marked paid) is stored; its PaymentIntent succeeds (a 3-D Secure
/// card, now authenticated, charges like a card from then on); an `incomplete`, `past_due`
/// or `unpaid` subscription becomes `active`. Events: `customer.subscription.updated` (what
/// changed, including a renewal's new period), `invoice.paid`.
fn record_paid(state: &mut State, invoice: Value) -> Vec<PendingEvent> {
    let invoice_id = invoice["id"].as_str().unwrap_or_default().to_owned();
    let pm = payment_method(state, &invoice);
    let authenticating =
        intents::of_invoice(state, &invoice_id).is_some_and(|pi| pi["status"] == "requires_action");
    if let Some(pm) = &pm
        && authenticating
        && state.payment_methods.get(pm) == Some(&ThreeDSecure)
    {
        state
            .payment_methods
            .insert(pm.clone(), PaymentMethodKind::Card);
    }
    intents::charge(state, &invoice_id, pm.as_deref(), Outcome::Succeeded);
    let mut events = Vec::new();
    if let Some(sub) = subscription_of(state, &invoice).cloned() {
        let before = state
            .before_renewal
            .remove(&invoice_id)
            .unwrap_or_else(|| sub.clone());
        let mut after = sub;
        if matches!(
            after["status"].as_str(),
            Some("incomplete" | "past_due" | "unpaid")
        ) {
            after["status"] = json!("active");
        }
        let id = after["id"].as_str().unwrap_or_default().to_owned();
        state.subscriptions.insert(id, after.clone());
        events.extend(updated_event(&before, &after, &EventRequest::default()));
    }
    state.invoices.insert(invoice_id, invoice.clone());
    events.push(event("invoice.paid", &invoice));
    events
}

/// A charge of the invoice did not go through: an `active` or `trialing` subscription
/// becomes `past_due`. `customer.subscription.updated` if anything changed (a renewal's new
/// period too).
fn past_due(state: &mut State, invoice: &Value) -> Option<PendingEvent> {
    let sub = subscription_of(state, invoice)?.clone();
    let invoice_id = invoice["id"].as_str().unwrap_or_default();
    let before = state
        .before_renewal
        .remove(invoice_id)
        .unwrap_or_else(|| sub.clone());
    let mut after = sub;
    if matches!(after["status"].as_str(), Some("active" | "trialing")) {
        after["status"] = json!("past_due");
    }
    let id = after["id"].as_str().unwrap_or_default().to_owned();
    state.subscriptions.insert(id, after.clone());
    updated_event(&before, &after, &EventRequest::default())
}

/// A draft or open invoice whose payment is not processing, or why it cannot be charged.
fn chargeable(state: &State, invoice_id: &str) -> Result<Value, ApiError> {
    let invoice = state
        .invoices
        .get(invoice_id)
        .ok_or_else(|| ApiError::no_such("invoice", invoice_id, "id"))?;
    if !matches!(invoice["status"].as_str(), Some("draft" | "open")) {
        return Err(ApiError::invalid(
            format!("Invoice is already {}.", invoice["status"]),
            None,
        ));
    }
    if intents::of_invoice(state, invoice_id).is_some_and(|pi| pi["status"] == "processing") {
        return Err(ApiError::invalid(
            format!("Invoice {invoice_id} has a payment processing; settle it first."),
            None,
        ));
    }
    Ok(invoice.clone())
}

/// A failed or waiting attempt: a draft is finalized `open`; one more attempt, a retry
/// scheduled.
fn reopen(state: &mut State, invoice: &mut Value) {
    let attempts = invoice["attempt_count"].as_u64().unwrap_or(0);
    let now = state.now();
    if invoice["status"] == "draft" {
        let number = number_of(state, invoice);
        billing::finalize(invoice, now, &number, false);
    }
    invoice["attempt_count"] = json!(attempts + 1);
    invoice["next_payment_attempt"] = json!(now + RETRY_AFTER);
}

/// The invoice's number, a new one for a draft.
fn number_of(state: &mut State, invoice: &Value) -> String {
    match invoice["number"].as_str() {
        Some(number) => number.to_owned(),
        None => {
            let customer = invoice["customer"].as_str().unwrap_or_default().to_owned();
            next_invoice_number(state, &customer)
        }
    }
}

/// The payment method that charges the invoice: its PaymentIntent's, else its
/// subscription's (or the customer's).
fn payment_method(state: &State, invoice: &Value) -> Option<String> {
    let id = invoice["id"].as_str().unwrap_or_default();
    if let Some(pm) = intents::of_invoice(state, id).and_then(|pi| pi["payment_method"].as_str()) {
        return Some(pm.to_owned());
    }
    intents::payment_method_of(state, subscription_of(state, invoice)?)
}

fn subscription_of<'a>(state: &'a State, invoice: &Value) -> Option<&'a Value> {
    let id = invoice["parent"]["subscription_details"]["subscription"].as_str()?;
    state.subscriptions.get(id)
}

/// The Checkout Session whose subscription this invoice started, if it did.
fn checkout_of_first_invoice(state: &State, invoice: &Value) -> Option<String> {
    if invoice["billing_reason"] != "subscription_create" {
        return None;
    }
    let sub = invoice["parent"]["subscription_details"]["subscription"].as_str()?;
    state.checkout_of.get(sub).cloned()
}

fn event(type_: &'static str, object: &Value) -> PendingEvent {
    PendingEvent::new(type_, object, &EventRequest::default())
}
