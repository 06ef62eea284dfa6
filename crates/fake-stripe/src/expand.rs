//! `expand[]`: objects inlined in an answer instead of their ids, as Stripe does.
//!
//! Subscriptions (create, retrieve, update, resume) expand `latest_invoice`,
//! `latest_invoice.payments` and `latest_invoice.payments.data.payment.payment_intent`;
//! invoices (retrieve) expand `payments` and `payments.data.payment.payment_intent`. A
//! nested path expands its parents too. Any other path is refused with Stripe's 400 ("This
//! property cannot be expanded (x).") even where Stripe could expand it: the fake does not
//! model it, and a loud refusal beats a silent id. Other endpoints ignore `expand`.
//!
//! async-stripe sends the list as `expand[0]=a&expand[1]=b`; `expand[]=a` works too. Only
//! answers are expanded: stored objects and webhooks keep ids, as Stripe's events do.

use serde_json::Value;

use super::api::ApiError;
use super::form::Form;
use super::intents;
use super::state::State;

/// Refuses what cannot be expanded on a subscription; call before changing anything.
pub(super) fn check_subscription(params: &Form) -> Result<(), ApiError> {
    let paths = subscription_paths(params)?;
    invoice_expansion(&paths).map(drop)
}

/// `sub` with the expansions `params` ask for.
pub(super) fn subscription(
    state: &State,
    mut sub: Value,
    params: &Form,
) -> Result<Value, ApiError> {
    let invoice_paths = subscription_paths(params)?;
    let payments = invoice_expansion(&invoice_paths)?;
    if invoice_paths.is_empty() {
        return Ok(sub);
    }
    if let Some(invoice) = sub["latest_invoice"]
        .as_str()
        .and_then(|id| state.invoices.get(id))
    {
        sub["latest_invoice"] = with_payments(state, invoice.clone(), payments);
    }
    Ok(sub)
}

/// The subscription's paths as `(full path, path under latest_invoice)`.
fn subscription_paths(params: &Form) -> Result<Vec<(&str, &str)>, ApiError> {
    params
        .values("expand")
        .into_iter()
        .map(|path| match path.strip_prefix("latest_invoice") {
            Some("") => Ok((path, "")),
            Some(rest) if rest.starts_with('.') => Ok((path, &rest[1..])),
            _ => Err(not_expandable(path)),
        })
        .collect()
}

/// `invoice` with the expansions `params` ask for.
pub(super) fn invoice(state: &State, invoice: Value, params: &Form) -> Result<Value, ApiError> {
    let paths: Vec<(&str, &str)> = params.values("expand").iter().map(|p| (*p, *p)).collect();
    let payments = invoice_expansion(&paths)?;
    Ok(with_payments(state, invoice, payments))
}

/// What `(full path, path under the invoice)` pairs expand of an invoice (`""` is the
/// invoice itself): `None` leaves `payments` out, `Some(expand_intent)` adds it.
fn invoice_expansion(paths: &[(&str, &str)]) -> Result<Option<bool>, ApiError> {
    let mut payments = None;
    for (full, path) in paths {
        match *path {
            "" => {}
            "payments" => payments = payments.or(Some(false)),
            "payments.data.payment.payment_intent" => payments = Some(true),
            _ => return Err(not_expandable(full)),
        }
    }
    Ok(payments)
}

fn with_payments(state: &State, mut invoice: Value, payments: Option<bool>) -> Value {
    if let Some(expand_intent) = payments {
        invoice["payments"] = intents::payments_list(state, &invoice, expand_intent);
    }
    invoice
}

fn not_expandable(path: &str) -> ApiError {
    ApiError::invalid(
        format!("This property cannot be expanded ({path})."),
        Some("expand"),
    )
}
