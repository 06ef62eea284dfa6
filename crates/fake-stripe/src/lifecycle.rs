//! How a subscription lives: it starts (with its first invoice), changes, and ends; and
//! the small rules those steps share (billing intervals, invoice numbers, what changed).
//!
//! A subscription starts `active` with a paid first invoice when charging it succeeds (a
//! card that needs nothing more), else `incomplete` with an open first invoice whose
//! PaymentIntent says why: `requires_action` (3-D Secure), `requires_payment_method` (declined,
//! or no charge attempted), `processing` (a bank debit). A first invoice with nothing due (a
//! trial's, see `trials.rs`, or one a discount takes to 0, see `discount_amounts.rs`) is paid
//! without a charge or a PaymentIntent, whatever the payment method. Stripe's later status
//! changes are in `transitions.rs` and `trials.rs`; charging invoices after the first is in
//! `payments.rs`.

use chrono::{DateTime, Days, Months, Utc};
use serde_json::{Map, Value, json};

use super::api::ApiError;
use super::billing::{self, NewInvoice, NewSubscription};
use super::discount_amounts;
use super::discounts::{self, Wanted};
use super::intents::{self, Outcome};
use super::lines;
use super::state::State;
use super::trials::{self, TrialRequest};
use super::webhooks::{EventRequest, PendingEvent};

/// What a new subscription is made of.
pub(super) struct Start<'a> {
    pub customer: &'a str,
    /// `(price id, quantity, the parameter that named the price)`.
    pub items: Vec<(String, i64, String)>,
    pub metadata: Value,
    /// What charging the first invoice comes to: `Succeeded` makes it active and paid. Not
    /// used when nothing is due (a trial, a 100% discount): that invoice is paid as it is.
    pub outcome: Outcome,
    /// The subscription's own default payment method (else the customer's is charged).
    pub default_payment_method: Option<String>,
    /// A trial, and its end behaviour (see `trials.rs`).
    pub trial: TrialRequest,
    /// The discounts to redeem on it (see `discounts.rs`), checked already.
    pub discounts: Vec<Wanted>,
    pub request: &'a EventRequest,
}

/// Creates the subscription and its first invoice, charged as `s.outcome` says; returns
/// both and the events: `customer.subscription.created`, `customer.discount.created` for each
/// discount, then `invoice.paid` (succeeded, or nothing due), `invoice.payment_action_required`
/// (3-D Secure) or `invoice.payment_failed` (declined).
pub(super) fn start(
    state: &mut State,
    s: Start<'_>,
) -> Result<(Value, Value, Vec<PendingEvent>), ApiError> {
    let customer = state
        .customers
        .get(s.customer)
        .cloned()
        .ok_or_else(|| ApiError::no_such("customer", s.customer, "customer"))?;
    if s.items.is_empty() {
        return Err(ApiError::missing_param("items"));
    }
    let mut prices = Vec::new();
    for (price_id, quantity, param) in &s.items {
        let price = state
            .prices
            .get(price_id)
            .cloned()
            .ok_or_else(|| ApiError::no_such("price", price_id, param))?;
        if price["type"] != "recurring" {
            return Err(ApiError::invalid(
                "The price specified is set to `type=one_time` but this field only accepts \
                 prices with `type=recurring`.",
                Some(param),
            ));
        }
        prices.push((price, *quantity));
    }
    let now = state.now();
    let (sub_id, invoice_id) = (state.id("sub"), state.id("in"));
    let trial_end = s.trial.end;
    let end = trial_end.unwrap_or_else(|| advance(now, &prices[0].0));
    let mut items = Vec::new();
    let mut lines = Vec::new();
    for (price, quantity) in &prices {
        let item_id = state.id("si");
        let item = billing::subscription_item(&item_id, now, &sub_id, price, *quantity, (now, end));
        let description = describe(state, &item);
        let line_id = state.id("il");
        let line = lines::subscription_line(
            &line_id,
            &invoice_id,
            &item,
            &s.metadata,
            description,
            (now, end),
        );
        lines.push(match trial_end {
            Some(_) => trials::line(line, &product_name(state, price)),
            None => line,
        });
        items.push(item);
    }
    let currency = prices[0].0["currency"].clone();
    let (discount_ids, redeemed) = discounts::redeem(state, &s.discounts, s.customer, &sub_id);
    let mut invoice = billing::invoice(NewInvoice {
        id: &invoice_id,
        created: now,
        customer: &customer,
        currency: &currency,
        billing_reason: "subscription_create",
        subscription: Some((&sub_id, &s.metadata)),
        period: (now, now),
        lines,
    });
    discount_amounts::apply(state, &mut invoice, &discount_ids);
    let nothing_due = invoice["amount_due"].as_i64().unwrap_or(0) <= 0;
    let number = next_invoice_number(state, s.customer);
    let paid = nothing_due || s.outcome == Outcome::Succeeded;
    billing::finalize(&mut invoice, now, &number, paid);
    if paid {
        invoice["attempt_count"] = json!(0);
    }
    if !nothing_due && s.outcome == Outcome::Processing {
        invoice["next_payment_attempt"] = Value::Null;
    }
    let mut subscription = billing::subscription(NewSubscription {
        id: &sub_id,
        created: now,
        customer: s.customer,
        currency: &currency,
        status: if paid { "active" } else { "incomplete" },
        items,
        metadata: s.metadata.clone(),
        default_payment_method: s.default_payment_method.as_deref(),
        latest_invoice: Some(&invoice_id),
    });
    subscription["discounts"] = json!(discount_ids);
    trials::set_behavior(&mut subscription, &s.trial);
    if let Some(end) = trial_end {
        trials::start(&mut subscription, now, end);
    }
    if let Some(customer) = state.customers.get_mut(s.customer)
        && customer["currency"].is_null()
    {
        customer["currency"] = currency;
    }
    let payment_method = s.default_payment_method.clone().or_else(|| {
        customer["invoice_settings"]["default_payment_method"]
            .as_str()
            .map(str::to_owned)
    });
    state.subscriptions.insert(sub_id, subscription.clone());
    state.invoices.insert(invoice_id.clone(), invoice.clone());
    if !nothing_due {
        intents::charge(state, &invoice_id, payment_method.as_deref(), s.outcome);
    }
    let mut events = vec![PendingEvent::new(
        "customer.subscription.created",
        &subscription,
        s.request,
    )];
    events.extend(discounts::created_events(&redeemed, s.request));
    let charged = match s.outcome {
        _ if nothing_due => Some("invoice.paid"),
        Outcome::Succeeded => Some("invoice.paid"),
        Outcome::RequiresAction => Some("invoice.payment_action_required"),
        Outcome::Declined | Outcome::DebitFailed => Some("invoice.payment_failed"),
        Outcome::Processing | Outcome::NotAttempted => None,
    };
    if let Some(type_) = charged {
        events.push(PendingEvent::new(type_, &invoice, s.request));
    }
    Ok((subscription, invoice, events))
}

/// The subscription ends now: `customer.subscription.deleted`, set off by `request`.
pub(super) fn end(
    state: &mut State,
    id: &str,
    request: &EventRequest,
) -> Result<Vec<PendingEvent>, ApiError> {
    let now = state.now();
    let sub = state
        .subscriptions
        .get_mut(id)
        .ok_or_else(|| ApiError::no_such("subscription", id, "id"))?;
    if sub["status"] == "canceled" {
        return Err(ApiError::invalid(
            format!("Subscription {id} is already canceled."),
            None,
        ));
    }
    sub["status"] = json!("canceled");
    sub["ended_at"] = json!(now);
    if sub["canceled_at"].is_null() {
        sub["canceled_at"] = json!(now);
    }
    if sub["cancellation_details"]["reason"].is_null() {
        sub["cancellation_details"]["reason"] = json!("cancellation_requested");
    }
    let event = PendingEvent::new("customer.subscription.deleted", sub, request);
    Ok(vec![event])
}

/// `customer.subscription.updated`, if anything changed.
pub(super) fn updated_event(
    before: &Value,
    after: &Value,
    request: &EventRequest,
) -> Option<PendingEvent> {
    let previous = previous_attributes(before, after)?;
    let mut event = PendingEvent::new("customer.subscription.updated", after, request);
    event.previous_attributes = Some(previous);
    Some(event)
}

/// The old values of what changed, nested objects compared key by key (arrays as a whole).
pub(super) fn previous_attributes(before: &Value, after: &Value) -> Option<Value> {
    let after = after.as_object()?;
    let mut previous = Map::new();
    for (key, new) in after {
        let old = before.get(key).unwrap_or(&Value::Null);
        if old == new {
            continue;
        }
        let value = match (old.is_object(), new.is_object()) {
            (true, true) => previous_attributes(old, new).unwrap_or_else(|| old.clone()),
            _ => old.clone(),
        };
        previous.insert(key.clone(), value);
    }
    (!previous.is_empty()).then_some(Value::Object(previous))
}

/// One billing interval of `price` after `from`.
pub(super) fn advance(from: i64, price: &Value) -> i64 {
    let recurring = &price["recurring"];
    let count = recurring["interval_count"].as_u64().unwrap_or(1).max(1);
    let start = DateTime::<Utc>::from_timestamp(from, 0).unwrap_or_default();
    let next = match recurring["interval"].as_str().unwrap_or("month") {
        "day" => start.checked_add_days(Days::new(count)),
        "week" => start.checked_add_days(Days::new(7 * count)),
        "year" => start.checked_add_months(Months::new(12 * count as u32)),
        _ => start.checked_add_months(Months::new(count as u32)),
    };
    next.map_or(from, |t| t.timestamp())
}

/// Moves each item to a new period starting at `start(item)` (one interval of its price)
/// and returns the invoice line that bills it on `invoice_id`.
pub(super) fn start_periods(
    state: &mut State,
    invoice_id: &str,
    items: &mut [Value],
    metadata: &Value,
    start: impl Fn(&Value) -> i64,
) -> Vec<Value> {
    let mut lines = Vec::new();
    for item in items {
        let start = start(item);
        let end = advance(start, &item["price"]);
        item["current_period_start"] = json!(start);
        item["current_period_end"] = json!(end);
        item["billed_until"] = json!(end);
        let line_id = state.id("il");
        let description = describe(state, item);
        lines.push(lines::subscription_line(
            &line_id,
            invoice_id,
            item,
            metadata,
            description,
            (start, end),
        ));
    }
    lines
}

/// "1 × Pro (at $20.00 / month)" for a subscription item.
pub(super) fn describe(state: &State, item: &Value) -> String {
    let price = &item["price"];
    let name = product_name(state, price);
    lines::line_description(item["quantity"].as_i64().unwrap_or(1), &name, price)
}

/// The name of `price`'s product (else the price's nickname).
pub(super) fn product_name(state: &State, price: &Value) -> String {
    price["product"]
        .as_str()
        .and_then(|p| state.products.get(p))
        .and_then(|p| p["name"].as_str())
        .or(price["nickname"].as_str())
        .unwrap_or("Subscription item")
        .to_owned()
}

/// The customer's next invoice number, `PREFIX-0001`, and its sequence moved on.
pub(super) fn next_invoice_number(state: &mut State, customer: &str) -> String {
    let Some(customer) = state.customers.get_mut(customer) else {
        return "FAKE-0001".to_owned();
    };
    let sequence = customer["next_invoice_sequence"].as_i64().unwrap_or(1);
    customer["next_invoice_sequence"] = json!(sequence + 1);
    format!(
        "{}-{sequence:04}",
        customer["invoice_prefix"].as_str().unwrap_or("FAKE")
    )
}
