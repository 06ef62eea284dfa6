//! `expand[]`: objects inlined in an answer instead of their ids, as Stripe does.
//!
//! Subscriptions (create, retrieve, update, resume, cancel) expand `discounts`,
//! `latest_invoice`, `latest_invoice.payments`,
//! `latest_invoice.payments.data.payment.payment_intent` and `latest_invoice.discounts`;
//! invoices (retrieve) expand `payments`, `payments.data.payment.payment_intent` and
//! `discounts`. A nested path expands its parents too. Any other path is refused with
//! Stripe's 400 ("This property cannot be expanded (x).") even where Stripe could expand it
//! (`discounts.source.coupon`, say): the fake does not model it, and a loud refusal beats a
//! silent id. Other endpoints ignore `expand`.
//!
//! async-stripe sends the list as `expand[0]=a&expand[1]=b`; `expand[]=a` works too. Only
//! answers are expanded: stored objects and webhooks keep ids, as Stripe's events do.

use serde_json::Value;

use super::api::ApiError;
use super::discounts;
use super::form::Form;
use super::intents;
use super::state::State;

/// Refuses what cannot be expanded on a subscription; call before changing anything.
pub(super) fn check_subscription(params: &Form) -> Result<(), ApiError> {
    let (paths, _) = subscription_paths(params)?;
    invoice_expansion(&paths).map(drop)
}

/// `sub` with the expansions `params` ask for.
pub(super) fn subscription(
    state: &State,
    mut sub: Value,
    params: &Form,
) -> Result<Value, ApiError> {
    let (invoice_paths, expand_discounts) = subscription_paths(params)?;
    let expansion = invoice_expansion(&invoice_paths)?;
    if expand_discounts {
        sub["discounts"] = discounts::expanded(state, &sub["discounts"]);
    }
    if invoice_paths.is_empty() {
        return Ok(sub);
    }
    if let Some(invoice) = sub["latest_invoice"]
        .as_str()
        .and_then(|id| state.invoices.get(id))
    {
        sub["latest_invoice"] = with(state, invoice.clone(), expansion);
    }
    Ok(sub)
}

/// Expansion paths as `(full path, path under the object expanded)`.
type Paths<'a> = Vec<(&'a str, &'a str)>;

/// The subscription's `latest_invoice` paths, and whether `discounts` is expanded.
fn subscription_paths(params: &Form) -> Result<(Paths<'_>, bool), ApiError> {
    let mut invoice_paths = Vec::new();
    let mut expand_discounts = false;
    for path in params.values("expand") {
        match path.strip_prefix("latest_invoice") {
            _ if path == "discounts" => expand_discounts = true,
            Some("") => invoice_paths.push((path, "")),
            Some(rest) if rest.starts_with('.') => invoice_paths.push((path, &rest[1..])),
            _ => return Err(not_expandable(path)),
        }
    }
    Ok((invoice_paths, expand_discounts))
}

/// `invoice` with the expansions `params` ask for.
pub(super) fn invoice(state: &State, invoice: Value, params: &Form) -> Result<Value, ApiError> {
    let paths: Vec<(&str, &str)> = params.values("expand").iter().map(|p| (*p, *p)).collect();
    let expansion = invoice_expansion(&paths)?;
    Ok(with(state, invoice, expansion))
}

/// What an invoice expands: its `payments` (`None`: not expanded; `Some(true)`: with the
/// PaymentIntents inside) and its `discounts`.
#[derive(Clone, Copy, Default)]
struct InvoiceExpansion {
    payments: Option<bool>,
    discounts: bool,
}

/// What `(full path, path under the invoice)` pairs expand of an invoice (`""` is the
/// invoice itself).
fn invoice_expansion(paths: &[(&str, &str)]) -> Result<InvoiceExpansion, ApiError> {
    let mut expansion = InvoiceExpansion::default();
    for (full, path) in paths {
        match *path {
            "" => {}
            "payments" => expansion.payments = expansion.payments.or(Some(false)),
            "payments.data.payment.payment_intent" => expansion.payments = Some(true),
            "discounts" => expansion.discounts = true,
            _ => return Err(not_expandable(full)),
        }
    }
    Ok(expansion)
}

fn with(state: &State, mut invoice: Value, expansion: InvoiceExpansion) -> Value {
    if let Some(expand_intent) = expansion.payments {
        invoice["payments"] = intents::payments_list(state, &invoice, expand_intent);
    }
    if expansion.discounts {
        invoice["discounts"] = discounts::expanded(state, &invoice["discounts"]);
    }
    invoice
}

fn not_expandable(path: &str) -> ApiError {
    ApiError::invalid(
        format!("This property cannot be expanded ({path})."),
        Some("expand"),
    )
}
