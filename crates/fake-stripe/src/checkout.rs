//! Checkout sessions: create, complete (as a customer paying on the hosted page would, with
//! a card, a 3-D Secure card, or a bank debit that settles later) and expire.
//!
//! A session's line items and `subscription_data` are not part of the session object, so
//! they are kept beside it until the session completes.

use serde_json::{Value, json};

use super::PaymentMethodKind;
use super::api::{Answer, ApiError, integer};
use super::customers;
use super::form::{Form, MetadataUpdate};
use super::intents::{self, Outcome};
use super::lifecycle::{self, Start};
use super::objects::{self, NewSession};
use super::state::State;
use super::webhooks::{EventRequest, PendingEvent};

/// What a session will buy: `(price, quantity)` lines and the subscription's metadata.
#[derive(Debug, Clone)]
pub(super) struct Purchase {
    pub lines: Vec<(String, i64)>,
    pub subscription_metadata: Value,
}

pub(super) fn create(state: &mut State, params: &Form, base_url: &str) -> Result<Answer, ApiError> {
    let mode = params.get("mode").unwrap_or("payment");
    if !matches!(mode, "payment" | "setup" | "subscription") {
        return Err(ApiError::invalid(
            format!("Invalid mode: {mode}"),
            Some("mode"),
        ));
    }
    let customer = params.get("customer");
    if let Some(id) = customer
        && !state.customers.contains_key(id)
    {
        return Err(ApiError::no_such("customer", id, "customer"));
    }
    let mut lines = Vec::new();
    let mut amount = 0;
    let mut currency = None;
    for (i, line) in params.list("line_items").iter().enumerate() {
        let param = format!("line_items[{i}][price]");
        let price_id = line
            .get("price")
            .ok_or_else(|| ApiError::missing_param(&param))?;
        let price = state
            .prices
            .get(price_id)
            .ok_or_else(|| ApiError::no_such("price", price_id, &param))?;
        let quantity = integer(line, "quantity")?.unwrap_or(1);
        amount += price["unit_amount"].as_i64().unwrap_or(0) * quantity;
        currency = price["currency"].as_str().map(str::to_owned);
        lines.push((price_id.to_owned(), quantity));
    }
    if mode != "setup" && lines.is_empty() {
        return Err(ApiError::missing_param("line_items"));
    }
    let id = state.id("cs_test");
    let url = format!("{base_url}/checkout/{id}");
    let session = objects::checkout_session(NewSession {
        id: &id,
        created: state.now(),
        url: &url,
        mode,
        customer,
        customer_email: params.get("customer_email"),
        currency: currency.as_deref(),
        amount,
        success_url: params.get("success_url"),
        cancel_url: params.get("cancel_url"),
        client_reference_id: params.get("client_reference_id"),
        metadata: MetadataUpdate::new_object(params.metadata("metadata").as_ref()),
    });
    let subscription_metadata = MetadataUpdate::new_object(
        params
            .sub("subscription_data")
            .metadata("metadata")
            .as_ref(),
    );
    state.purchases.insert(
        id.clone(),
        Purchase {
            lines,
            subscription_metadata,
        },
    );
    state.sessions.insert(id, session.clone());
    Ok(Answer::quiet(session))
}

/// The customer pays: see [`super::FakeStripe::complete_checkout`] (`kind` `None`: the
/// customer's default payment method, or a new card) and
/// [`super::FakeStripe::complete_checkout_with`].
pub(super) fn complete(
    state: &mut State,
    session_id: &str,
    kind: Option<PaymentMethodKind>,
) -> Result<Vec<PendingEvent>, ApiError> {
    let session = open_session(state, session_id)?;
    let purchase = state
        .purchases
        .get(session_id)
        .cloned()
        .ok_or_else(|| ApiError::no_such("checkout.session", session_id, "id"))?;
    if kind == Some(PaymentMethodKind::Declining) {
        return Err(ApiError::card_error(
            "card_declined",
            Some("generic_decline"),
            "Your card was declined.",
        ));
    }
    let mut events = Vec::new();
    let customer_id = match session["customer"].as_str() {
        Some(id) if state.customers.contains_key(id) => id.to_owned(),
        Some(id) => return Err(ApiError::no_such("customer", id, "customer")),
        None => {
            // Stripe makes the customer first: `customer.created` comes before the rest.
            let email = session["customer_email"].as_str();
            let (customer, created) = customers::open(
                state,
                None,
                email,
                json!({}),
                &EventRequest::default(),
                |_| {},
            );
            events.push(created);
            customer["id"].as_str().unwrap_or_default().to_owned()
        }
    };
    let (payment_method, outcome) = match kind {
        None => (
            set_default_payment_method(state, &customer_id),
            Outcome::Succeeded,
        ),
        // 3-D Secure is done on the checkout page: from then on the card charges as a card.
        Some(kind) => {
            let saved = match kind {
                PaymentMethodKind::ThreeDSecure => PaymentMethodKind::Card,
                other => other,
            };
            let pm = intents::new_default_payment_method(state, &customer_id, saved);
            (pm, intents::outcome_of(Some(saved)))
        }
    };
    let mut completed = session.clone();
    if session["mode"] == "subscription" {
        // Stripe's own action: its events share one generated idempotency key.
        let request = EventRequest {
            id: None,
            idempotency_key: Some(state.uuid()),
        };
        let (subscription, invoice, created) = lifecycle::start(
            state,
            Start {
                customer: &customer_id,
                items: purchase
                    .lines
                    .iter()
                    .map(|(price, qty)| (price.clone(), *qty, "line_items".to_owned()))
                    .collect(),
                metadata: purchase.subscription_metadata,
                outcome,
                default_payment_method: Some(payment_method),
                request: &request,
            },
        )?;
        events.extend(created);
        let sub_id = subscription["id"].as_str().unwrap_or_default().to_owned();
        state.checkout_of.insert(sub_id, session_id.to_owned());
        completed["subscription"] = subscription["id"].clone();
        completed["invoice"] = invoice["id"].clone();
    }
    let customer = &state.customers[&customer_id];
    completed["customer"] = json!(customer_id);
    completed["customer_details"] = objects::customer_details(customer);
    completed["status"] = json!("complete");
    completed["payment_status"] = json!(match (session["mode"].as_str(), outcome) {
        (Some("setup"), _) => "no_payment_required",
        (_, Outcome::Succeeded) => "paid",
        _ => "unpaid",
    });
    completed["url"] = Value::Null;
    state
        .sessions
        .insert(session_id.to_owned(), completed.clone());
    events.push(PendingEvent::new(
        "checkout.session.completed",
        &completed,
        &EventRequest::default(),
    ));
    Ok(events)
}

/// The session times out unpaid: `checkout.session.expired`.
pub(super) fn expire(state: &mut State, session_id: &str) -> Result<Vec<PendingEvent>, ApiError> {
    let mut session = open_session(state, session_id)?;
    session["status"] = json!("expired");
    session["url"] = Value::Null;
    state
        .sessions
        .insert(session_id.to_owned(), session.clone());
    Ok(vec![PendingEvent::new(
        "checkout.session.expired",
        &session,
        &EventRequest::default(),
    )])
}

fn open_session(state: &State, session_id: &str) -> Result<Value, ApiError> {
    let session = state
        .sessions
        .get(session_id)
        .ok_or_else(|| ApiError::no_such("checkout.session", session_id, "id"))?;
    if session["status"] != "open" {
        return Err(ApiError::invalid(
            format!(
                "This Checkout Session is no longer open (status: {}).",
                session["status"]
            ),
            None,
        ));
    }
    Ok(session.clone())
}

/// Gives the customer a default card unless its default payment method already charges
/// like one; returns its id.
pub(super) fn set_default_payment_method(state: &mut State, customer_id: &str) -> String {
    let existing = state
        .customers
        .get(customer_id)
        .and_then(|c| c["invoice_settings"]["default_payment_method"].as_str())
        .map(str::to_owned);
    match existing {
        Some(pm) if intents::kind_of(state, Some(&pm)) == Some(PaymentMethodKind::Card) => pm,
        _ => intents::new_default_payment_method(state, customer_id, PaymentMethodKind::Card),
    }
}
