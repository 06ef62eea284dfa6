//! PaymentIntents: the charge behind every finalized subscription invoice, shaped as API
//! version `2026-09-30.endive` renders them (`stripe_shared::PaymentIntent`), the states a
//! charge reaches, and the `invoice_payment` that links an invoice to its PaymentIntent
//! (seen when an invoice's `payments` is expanded).
//!
//! Which state a charge reaches follows the payment method's [`PaymentMethodKind`]: see
//! [`outcome_of`]. Charges are not separate objects: `latest_charge` is an id only.

use serde_json::{Value, json};

use super::PaymentMethodKind;
use super::objects;
use super::state::{InvoicePaymentLink, State};

/// What a charge attempt came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// `succeeded`.
    Succeeded,
    /// `requires_action`: 3-D Secure, with a `next_action`.
    RequiresAction,
    /// `requires_payment_method` with a `card_declined` `last_payment_error`.
    Declined,
    /// `processing`: a bank debit not yet decided.
    Processing,
    /// `requires_payment_method` with no error: no charge was attempted.
    NotAttempted,
    /// `requires_payment_method` with an `insufficient_funds` error: a debit bounced.
    DebitFailed,
}

/// What charging a payment method of `kind` comes to; no payment method, no attempt.
pub(super) fn outcome_of(kind: Option<PaymentMethodKind>) -> Outcome {
    match kind {
        None => Outcome::NotAttempted,
        Some(PaymentMethodKind::Card) => Outcome::Succeeded,
        Some(PaymentMethodKind::ThreeDSecure) => Outcome::RequiresAction,
        Some(PaymentMethodKind::Declining) => Outcome::Declined,
        Some(PaymentMethodKind::AsyncDebit) => Outcome::Processing,
    }
}

/// The kind of payment method `pm`: `None` without one, a card for ids the fake did not make.
pub(super) fn kind_of(state: &State, pm: Option<&str>) -> Option<PaymentMethodKind> {
    let pm = pm?;
    Some(
        state
            .payment_methods
            .get(pm)
            .copied()
            .unwrap_or(PaymentMethodKind::Card),
    )
}

/// The payment method that pays for subscription `sub`: its own default, else its
/// customer's.
pub(super) fn payment_method_of(state: &State, sub: &Value) -> Option<String> {
    if let Some(pm) = sub["default_payment_method"].as_str() {
        return Some(pm.to_owned());
    }
    let customer = state.customers.get(sub["customer"].as_str()?)?;
    customer["invoice_settings"]["default_payment_method"]
        .as_str()
        .map(str::to_owned)
}

/// A new payment method of `kind`, made the customer's default (replacing any); its id.
pub(super) fn new_default_payment_method(
    state: &mut State,
    customer_id: &str,
    kind: PaymentMethodKind,
) -> String {
    let id = state.id("pm");
    state.payment_methods.insert(id.clone(), kind);
    if let Some(customer) = state.customers.get_mut(customer_id) {
        customer["invoice_settings"]["default_payment_method"] = json!(id);
    }
    id
}

/// Charges finalized invoice `invoice_id` with `pm`: its PaymentIntent (made on first use)
/// reaches `outcome`. Returns the PaymentIntent.
pub(super) fn charge(
    state: &mut State,
    invoice_id: &str,
    pm: Option<&str>,
    outcome: Outcome,
) -> Value {
    let id = intent_of(state, invoice_id, pm);
    let charge = state.id("ch");
    let kind = kind_of(state, pm);
    let Some(intent) = state.payment_intents.get_mut(&id) else {
        return Value::Null;
    };
    if outcome != Outcome::NotAttempted && pm.is_some() {
        intent["payment_method"] = json!(pm);
        intent["payment_method_types"] = json!([method_type(kind)]);
    }
    apply(intent, outcome, &charge);
    intent.clone()
}

/// The PaymentIntent of invoice `invoice_id` is canceled (the invoice was voided).
pub(super) fn cancel(state: &mut State, invoice_id: &str) {
    let now = state.now();
    let Some(link) = state.invoice_payments.get(invoice_id) else {
        return;
    };
    if let Some(intent) = state.payment_intents.get_mut(&link.payment_intent) {
        intent["status"] = json!("canceled");
        intent["canceled_at"] = json!(now);
        intent["cancellation_reason"] = json!("void_invoice");
        intent["next_action"] = Value::Null;
    }
}

/// The PaymentIntent of invoice `invoice_id`, if it was finalized.
pub(super) fn of_invoice<'a>(state: &'a State, invoice_id: &str) -> Option<&'a Value> {
    let link = state.invoice_payments.get(invoice_id)?;
    state.payment_intents.get(&link.payment_intent)
}

/// The invoice's `payments` list: its default `invoice_payment`, whose `payment` names the
/// PaymentIntent, or holds it when `expand_intent`.
pub(super) fn payments_list(state: &State, invoice: &Value, expand_intent: bool) -> Value {
    let invoice_id = invoice["id"].as_str().unwrap_or_default();
    let data: Vec<Value> = state
        .invoice_payments
        .get(invoice_id)
        .and_then(|link| Some((link, state.payment_intents.get(&link.payment_intent)?)))
        .map(|(link, intent)| invoice_payment(link, invoice, intent, expand_intent))
        .into_iter()
        .collect();
    let mut list = objects::list(
        &format!("/v1/invoice_payments?invoice={invoice_id}"),
        data,
        false,
    );
    list["total_count"] = json!(list["data"].as_array().map_or(0, Vec::len));
    list
}

/// One `invoice_payment` (`stripe_shared::InvoicePayment`).
fn invoice_payment(
    link: &InvoicePaymentLink,
    invoice: &Value,
    intent: &Value,
    expand_intent: bool,
) -> Value {
    let (status, amount_paid) = match intent["status"].as_str() {
        Some("succeeded") => ("paid", intent["amount_received"].clone()),
        Some("canceled") => ("canceled", Value::Null),
        _ => ("open", Value::Null),
    };
    let payment_intent = if expand_intent {
        intent.clone()
    } else {
        intent["id"].clone()
    };
    json!({
        "id": link.id, "object": "invoice_payment", "amount_paid": amount_paid,
        "amount_requested": intent["amount"], "created": intent["created"],
        "currency": intent["currency"], "invoice": invoice["id"], "is_default": true,
        "livemode": false,
        "payment": {"type": "payment_intent", "payment_intent": payment_intent},
        "status": status,
        "status_transitions": {
            "canceled_at": intent["canceled_at"],
            "paid_at": invoice["status_transitions"]["paid_at"]
        }
    })
}

/// The id of the invoice's PaymentIntent, made (with its `invoice_payment`) if it has none.
fn intent_of(state: &mut State, invoice_id: &str, pm: Option<&str>) -> String {
    if let Some(link) = state.invoice_payments.get(invoice_id) {
        return link.payment_intent.clone();
    }
    let (id, link_id, now) = (state.id("pi"), state.id("inpay"), state.now());
    let invoice = state.invoices.get(invoice_id).cloned().unwrap_or_default();
    let kind = kind_of(state, pm);
    let intent = payment_intent(&id, now, &invoice, pm, kind);
    state.payment_intents.insert(id.clone(), intent);
    state.invoice_payments.insert(
        invoice_id.to_owned(),
        InvoicePaymentLink {
            id: link_id,
            payment_intent: id.clone(),
        },
    );
    id
}

fn method_type(kind: Option<PaymentMethodKind>) -> &'static str {
    match kind {
        Some(PaymentMethodKind::AsyncDebit) => "sepa_debit",
        _ => "card",
    }
}

/// A new PaymentIntent for `invoice`, `requires_payment_method`.
fn payment_intent(
    id: &str,
    created: i64,
    invoice: &Value,
    pm: Option<&str>,
    kind: Option<PaymentMethodKind>,
) -> Value {
    let description = match invoice["billing_reason"].as_str() {
        Some("subscription_create") => "Subscription creation",
        Some("subscription_cycle") => "Subscription cycle",
        Some("subscription_update") => "Subscription update",
        _ => "Payment for Invoice",
    };
    let method_options = match kind {
        Some(PaymentMethodKind::AsyncDebit) => json!({"sepa_debit": {}}),
        _ => json!({"card": {
            "installments": null, "mandate_options": null, "network": null,
            "request_three_d_secure": "automatic"
        }}),
    };
    objects::merged([
        json!({
            "id": id, "object": "payment_intent", "amount": invoice["amount_due"],
            "amount_capturable": 0, "amount_details": {"tip": {}}, "amount_received": 0,
            "application": null, "application_fee_amount": null,
            "automatic_payment_methods": null, "canceled_at": null, "cancellation_reason": null,
            "capture_method": "automatic_async", "client_secret": format!("{id}_secret_fake"),
            "confirmation_method": "automatic", "created": created,
            "currency": invoice["currency"], "customer": invoice["customer"],
            "customer_account": null, "description": description,
            "excluded_payment_method_types": null,
        }),
        json!({
            "last_payment_error": null, "latest_charge": null, "livemode": false,
            "metadata": {}, "next_action": null, "on_behalf_of": null,
            "payment_method": pm, "payment_method_configuration_details": null,
            "payment_method_options": method_options,
            "payment_method_types": [method_type(kind)], "processing": null,
            "receipt_email": null, "review": null, "setup_future_usage": "off_session",
            "shipping": null, "source": null, "statement_descriptor": null,
            "statement_descriptor_suffix": null, "status": "requires_payment_method",
            "transfer_data": null, "transfer_group": null
        }),
    ])
}

/// Moves `intent` to the state `outcome` stands for; `charge` names the attempt.
fn apply(intent: &mut Value, outcome: Outcome, charge: &str) {
    intent["next_action"] = Value::Null;
    intent["last_payment_error"] = Value::Null;
    let status = match outcome {
        Outcome::Succeeded => {
            intent["amount_received"] = intent["amount"].clone();
            intent["latest_charge"] = json!(charge);
            "succeeded"
        }
        Outcome::RequiresAction => {
            intent["next_action"] = json!({
                "type": "use_stripe_sdk",
                "use_stripe_sdk": {
                    "type": "three_d_secure_redirect",
                    "stripe_js": format!("https://hooks.stripe.com/3d_secure_2/fake/{charge}"),
                    "source": format!("payatt_{charge}")
                }
            });
            "requires_action"
        }
        Outcome::Processing => {
            intent["latest_charge"] = json!(charge);
            "processing"
        }
        Outcome::Declined => {
            intent["latest_charge"] = json!(charge);
            intent["last_payment_error"] = decline(charge);
            intent["payment_method"] = Value::Null;
            "requires_payment_method"
        }
        Outcome::DebitFailed => {
            intent["latest_charge"] = json!(charge);
            intent["last_payment_error"] = debit_failure(charge);
            intent["payment_method"] = Value::Null;
            "requires_payment_method"
        }
        Outcome::NotAttempted => "requires_payment_method",
    };
    intent["status"] = json!(status);
}

/// A declined card, as `last_payment_error` shows it.
fn decline(charge: &str) -> Value {
    json!({
        "type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
        "message": "Your card was declined.", "charge": charge,
        "doc_url": "https://stripe.com/docs/error-codes/card-declined",
        "payment_method_type": "card", "advice_code": "try_again_later"
    })
}

/// A bank debit that bounced, as `last_payment_error` shows it.
fn debit_failure(charge: &str) -> Value {
    json!({
        "type": "card_error", "code": "insufficient_funds",
        "message": "The customer's account has insufficient funds to cover this payment.",
        "charge": charge, "doc_url": "https://stripe.com/docs/error-codes/insufficient-funds",
        "payment_method_type": "sepa_debit"
    })
}
