//! Checkout sessions: create, complete (as a customer paying on the hosted page would, with
//! a card, a 3-D Secure card, or a bank debit that settles later; with a promotion code the
//! customer typed) and expire.
//!
//! A session's line items, `subscription_data` and discounts are not all part of the session
//! object, so they are kept beside it until the session completes.
//!
//! Subscription mode takes `subscription_data[trial_period_days]` or `[trial_end]` and
//! `subscription_data[trial_settings][end_behavior][missing_payment_method]` (see
//! `trials.rs`), `discounts[0][coupon]` or `discounts[0][promotion_code]` (see
//! `discounts.rs`), or instead `allow_promotion_codes=true` (a code the customer types:
//! [`super::FakeStripe::complete_checkout_with_code`]), and `payment_method_collection`
//! (`always`, the default, or `if_required`: nothing due now, as in a trial, collects no
//! payment method). The session shows `discounts: [{coupon, promotion_code}]`,
//! `allow_promotion_codes` (true or null), `amount_subtotal`, `amount_total` and
//! `total_details.amount_discount` of what is due now ($0 during a trial), and once
//! completed `payment_status` `no_payment_required` when nothing was due.

use serde_json::{Value, json};

use super::PaymentMethodKind;
use super::api::{Answer, ApiError, boolean, integer};
use super::customers;
use super::discount_amounts;
use super::discounts::{self, Wanted};
use super::form::{Form, MetadataUpdate};
use super::intents::{self, Outcome};
use super::lifecycle::{self, Start};
use super::objects::{self, NewSession};
use super::promotion_codes;
use super::state::State;
use super::trials::{self, TrialRequest};
use super::webhooks::{EventRequest, PendingEvent};

/// What a session will buy: `(price, quantity)` lines and the subscription's metadata,
/// trial and discounts.
#[derive(Debug, Clone)]
pub(super) struct Purchase {
    pub lines: Vec<(String, i64)>,
    pub subscription_metadata: Value,
    pub trial: TrialRequest,
    pub discounts: Vec<Wanted>,
    pub allow_promotion_codes: bool,
    /// `payment_method_collection=if_required`.
    pub collect_if_required: bool,
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
    let mut amounts = Vec::new();
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
        amounts.push(price["unit_amount"].as_i64().unwrap_or(0) * quantity);
        currency = price["currency"].as_str().map(str::to_owned);
        lines.push((price_id.to_owned(), quantity));
    }
    if mode != "setup" && lines.is_empty() {
        return Err(ApiError::missing_param("line_items"));
    }
    let trial = trials::requested(
        &params.sub("subscription_data"),
        state.now(),
        "subscription_data",
    )?;
    if mode != "subscription" && trial != TrialRequest::default() {
        return Err(ApiError::invalid(
            "A trial can only be given in subscription mode.",
            Some("subscription_data[trial_period_days]"),
        ));
    }
    let allow_promotion_codes = boolean(params, "allow_promotion_codes")?.unwrap_or(false);
    let wanted = discounts::requested(state, params, customer, currency.as_deref(), None)?
        .unwrap_or_default();
    if allow_promotion_codes && !wanted.is_empty() {
        return Err(ApiError::invalid(
            "You may only specify one of these parameters: allow_promotion_codes, discounts.",
            Some("discounts"),
        ));
    }
    let collection = params.get("payment_method_collection").unwrap_or("always");
    if !matches!(collection, "always" | "if_required") {
        return Err(ApiError::invalid(
            format!(
                "Invalid payment_method_collection: must be one of always or if_required (got {collection})"
            ),
            Some("payment_method_collection"),
        ));
    }
    let id = state.id("cs_test");
    let url = format!("{base_url}/checkout/{id}");
    let mut session = objects::checkout_session(NewSession {
        id: &id,
        created: state.now(),
        url: &url,
        mode,
        customer,
        customer_email: params.get("customer_email"),
        currency: currency.as_deref(),
        amount: amounts.iter().sum(),
        success_url: params.get("success_url"),
        cancel_url: params.get("cancel_url"),
        client_reference_id: params.get("client_reference_id"),
        metadata: MetadataUpdate::new_object(params.metadata("metadata").as_ref()),
    });
    session["allow_promotion_codes"] = if allow_promotion_codes {
        json!(true)
    } else {
        Value::Null
    };
    session["payment_method_collection"] = json!(collection);
    let due_now = if trial.end.is_some() {
        vec![0; amounts.len()]
    } else {
        amounts
    };
    show_amounts(state, &mut session, &wanted, &due_now);
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
            trial,
            discounts: wanted,
            allow_promotion_codes,
            collect_if_required: collection == "if_required",
        },
    );
    state.sessions.insert(id, session.clone());
    Ok(Answer::quiet(session))
}

/// The session's `discounts` and amounts for lines of `amounts` due now.
fn show_amounts(state: &State, session: &mut Value, wanted: &[Wanted], amounts: &[i64]) {
    let currency = session["currency"].as_str().unwrap_or_default().to_owned();
    let subtotal: i64 = amounts.iter().sum();
    let discount = discount_amounts::preview(state, wanted, amounts, &currency);
    set_amounts(session, subtotal, discount);
    session["discounts"] = discounts::session_entries(wanted);
}

fn set_amounts(session: &mut Value, subtotal: i64, discount: i64) {
    session["amount_subtotal"] = json!(subtotal);
    session["amount_total"] = json!(subtotal - discount);
    session["total_details"]["amount_discount"] = json!(discount);
}

/// The customer pays: see [`super::FakeStripe::complete_checkout`] (`kind` `None`: the
/// customer's default payment method, or a new card; `code`: a promotion code typed on the
/// page), [`super::FakeStripe::complete_checkout_with`] and
/// [`super::FakeStripe::complete_checkout_with_code`].
pub(super) fn complete(
    state: &mut State,
    session_id: &str,
    kind: Option<PaymentMethodKind>,
    code: Option<&str>,
) -> Result<Vec<PendingEvent>, ApiError> {
    let session = open_session(state, session_id)?;
    let mut purchase = state
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
    if let Some(code) = code {
        if !purchase.allow_promotion_codes {
            return Err(ApiError::invalid(
                format!(
                    "Checkout Session {session_id} does not take promotion codes \
                     (allow_promotion_codes is not set)."
                ),
                Some("promotion_code"),
            ));
        }
        let id = promotion_codes::find_code(state, code).ok_or_else(|| {
            ApiError::invalid(
                format!("This code is invalid: no active promotion code {code}."),
                Some("promotion_code"),
            )
        })?;
        let (_, coupon) = promotion_codes::redeemable_code(
            state,
            &id,
            session["customer"].as_str(),
            "promotion_code",
        )?;
        purchase.discounts = vec![Wanted::New {
            coupon: coupon["id"].as_str().unwrap_or_default().to_owned(),
            promotion_code: Some(id),
        }];
    }
    let amounts: Vec<i64> = purchase
        .lines
        .iter()
        .map(|(price, qty)| {
            state
                .prices
                .get(price)
                .and_then(|p| p["unit_amount"].as_i64())
                .unwrap_or(0)
                * qty
        })
        .collect();
    let currency = session["currency"].as_str().unwrap_or_default().to_owned();
    let subtotal: i64 = amounts.iter().sum();
    let nothing_due = session["mode"] == "subscription"
        && (purchase.trial.end.is_some()
            || subtotal
                <= discount_amounts::preview(state, &purchase.discounts, &amounts, &currency));
    let collects_nothing = purchase.collect_if_required && nothing_due;
    if collects_nothing && kind.is_some() {
        return Err(ApiError::invalid(
            format!(
                "Checkout Session {session_id} collects no payment method: nothing is due now \
                 and payment_method_collection is if_required."
            ),
            None,
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
        None if collects_nothing => (None, Outcome::NotAttempted),
        None => (
            Some(set_default_payment_method(state, &customer_id)),
            Outcome::Succeeded,
        ),
        // 3-D Secure is done on the checkout page: from then on the card charges as a card.
        Some(kind) => {
            let saved = match kind {
                PaymentMethodKind::ThreeDSecure => PaymentMethodKind::Card,
                other => other,
            };
            let pm = intents::new_default_payment_method(state, &customer_id, saved);
            (Some(pm), intents::outcome_of(Some(saved)))
        }
    };
    let mut completed = session.clone();
    let mut due = None;
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
                default_payment_method: payment_method,
                trial: purchase.trial,
                discounts: purchase.discounts.clone(),
                request: &request,
            },
        )?;
        events.extend(created);
        let sub_id = subscription["id"].as_str().unwrap_or_default().to_owned();
        state.checkout_of.insert(sub_id, session_id.to_owned());
        completed["subscription"] = subscription["id"].clone();
        completed["invoice"] = invoice["id"].clone();
        let subtotal = invoice["subtotal"].as_i64().unwrap_or(0);
        let total = invoice["total"].as_i64().unwrap_or(0);
        set_amounts(&mut completed, subtotal, subtotal - total);
        completed["discounts"] = discounts::session_entries(&purchase.discounts);
        due = invoice["amount_due"].as_i64();
    } else {
        show_amounts(state, &mut completed, &purchase.discounts, &amounts);
    }
    let customer = &state.customers[&customer_id];
    completed["customer"] = json!(customer_id);
    completed["customer_details"] = objects::customer_details(customer);
    completed["status"] = json!("complete");
    completed["payment_status"] = json!(match (session["mode"].as_str(), outcome, due) {
        (Some("setup"), _, _) | (_, _, Some(0)) => "no_payment_required",
        (_, Outcome::Succeeded, _) => "paid",
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
