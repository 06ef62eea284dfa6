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

/// `sub` with the expansions `params` ask for.
pub(super) fn subscription(
    state: &State,
    mut sub: Value,
    params: &Form,
) -> Result<Value, ApiError> {
    let mut invoice_paths = Vec::new();
    for path in params.values("expand") {
        match path.strip_prefix("latest_invoice") {
            Some("") => invoice_paths.push((path, "")),
            Some(rest) if rest.starts_with('.') => invoice_paths.push((path, &rest[1..])),
            _ => return Err(not_expandable(path)),
        }
    }
    if invoice_paths.is_empty() {
        return Ok(sub);
    }
    let Some(invoice) = sub["latest_invoice"]
        .as_str()
        .and_then(|id| state.invoices.get(id))
    else {
        return Ok(sub);
    };
    sub["latest_invoice"] = expand_invoice(state, invoice.clone(), &invoice_paths)?;
    Ok(sub)
}

/// `invoice` with the expansions `params` ask for.
pub(super) fn invoice(state: &State, invoice: Value, params: &Form) -> Result<Value, ApiError> {
    let paths: Vec<(&str, &str)> = params.values("expand").iter().map(|p| (*p, *p)).collect();
    expand_invoice(state, invoice, &paths)
}

/// Expands `invoice` by `(full path, path under the invoice)` pairs; `""` is the invoice
/// itself.
fn expand_invoice(
    state: &State,
    mut invoice: Value,
    paths: &[(&str, &str)],
) -> Result<Value, ApiError> {
    let mut payments = None;
    for (full, path) in paths {
        match *path {
            "" => {}
            "payments" => payments = payments.or(Some(false)),
            "payments.data.payment.payment_intent" => payments = Some(true),
            _ => return Err(not_expandable(full)),
        }
    }
    if let Some(expand_intent) = payments {
        invoice["payments"] = intents::payments_list(state, &invoice, expand_intent);
    }
    Ok(invoice)
}

fn not_expandable(path: &str) -> ApiError {
    ApiError::invalid(
        format!("This property cannot be expanded ({path})."),
        Some("expand"),
    )
}
