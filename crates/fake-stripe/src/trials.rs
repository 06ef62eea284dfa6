//! Trials: a subscription that starts `trialing`, and how its trial ends.
//!
//! Asked for with `trial_period_days` (1-730; 0 means no trial) or `trial_end` (a timestamp
//! in the future, at most 730 days away, or `now` for no trial), not both, on
//! `POST /v1/subscriptions` or a Checkout Session's `subscription_data[...]`; and
//! `trial_settings[end_behavior][missing_payment_method]` (`create_invoice`, Stripe's
//! default, `pause` or `cancel`). No payment method is needed: whatever `payment_behavior`
//! says, a trial starts `trialing` with a $0 first invoice, paid without a charge.
//!
//! The trialing subscription: `status` `trialing`, `trial_start` now, `trial_end` the end,
//! `billing_cycle_anchor` the end, each item's period now..end. Its first invoice
//! (`billing_reason` `subscription_create`) has one $0 line per item, "Trial period for
//! Pro", over the trial, and is `paid` (no PaymentIntent: nothing was charged).
//!
//! The trial ends ([`end`]) at `trial_end` ([`super::FakeStripe::end_trial`], or
//! [`super::FakeStripe::tick`] once the clock has passed it), or at once with
//! `trial_end=now` on `POST /v1/subscriptions/{id}`. First, if it was not sent yet,
//! `customer.subscription.trial_will_end` (Stripe sends it three days before the end, and
//! when a trial is ended with `trial_end=now`). Then, with a payment method (the
//! subscription's default, else the customer's):
//! - the subscription becomes `active`, its items move to the first paid period (from
//!   `trial_end`; from now for `trial_end=now`, which also moves `trial_end` and
//!   `billing_cycle_anchor` to now), and an invoice bills it (`billing_reason`
//!   `subscription_cycle`; `subscription_update` for `trial_end=now`, a guess), with the
//!   customer's pending invoice items and the subscription's discounts. It is charged at
//!   once (Stripe waits about an hour). Events: `customer.subscription.updated` (`trialing`
//!   → `active`, with `previous_attributes`), `invoice.created`, then the charge's as
//!   `payments::charge` makes them: `invoice.paid` for a card; `invoice.payment_failed` and
//!   `customer.subscription.updated` (`active` → `past_due`) for a declined one;
//!   `invoice.payment_action_required` and the same update for 3-D Secure; nothing more for
//!   a processing bank debit.
//!
//! Without one, as `trial_settings.end_behavior.missing_payment_method` says:
//! - `create_invoice`: as above, but the charge cannot be attempted: the invoice is `open`,
//!   its PaymentIntent `requires_payment_method` (no error), and the subscription
//!   `past_due`: `customer.subscription.updated` (→ `active`), `invoice.created`,
//!   `invoice.payment_failed`, `customer.subscription.updated` (→ `past_due`).
//! - `pause`: `status` `paused`, no invoice: `customer.subscription.paused`,
//!   `customer.subscription.updated`. `POST /v1/subscriptions/{id}/resume` resumes it.
//! - `cancel`: `status` `canceled`, `ended_at` and `canceled_at` now,
//!   `cancellation_details.reason` `cancellation_requested` (Stripe does not document the
//!   reason it sets here: a guess), no invoice: `customer.subscription.deleted`.
//!
//! A discount ending at that invoice (see `discounts.rs`) sends its
//! `customer.discount.deleted` before the subscription's update.

use serde_json::{Value, json};

use super::api::{ApiError, integer};
use super::form::Form;
use super::invoices;
use super::lifecycle::{self, updated_event};
use super::payments;
use super::state::State;
use super::webhooks::{EventRequest, PendingEvent};

/// Stripe sends `customer.subscription.trial_will_end` this long before the end.
pub(super) const WILL_END_BEFORE: i64 = 3 * 86_400;
/// The longest trial Stripe allows.
const MAX_DAYS: i64 = 730;

/// The end behaviours of `trial_settings[end_behavior][missing_payment_method]`.
const BEHAVIORS: &[&str] = &["cancel", "create_invoice", "pause"];

/// What a request asks of a trial.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct TrialRequest {
    /// When the trial ends; `None`: no trial.
    pub end: Option<i64>,
    /// `trial_settings[end_behavior][missing_payment_method]`, if given.
    pub missing_payment_method: Option<String>,
}

/// Reads `trial_period_days`, `trial_end` and `trial_settings` from `params`; `prefix` is
/// how the parameters are named in errors (`""` or `"subscription_data"`).
pub(super) fn requested(params: &Form, now: i64, prefix: &str) -> Result<TrialRequest, ApiError> {
    let name = |key: &str| {
        if prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{prefix}[{key}]")
        }
    };
    let days = integer(params, "trial_period_days")
        .map_err(|e| ApiError::invalid(e.message, Some(&name("trial_period_days"))))?;
    let end = params.get("trial_end").filter(|v| !v.is_empty());
    let end = match (days, end) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                format!(
                    "You may only specify one of these parameters: {}, {}.",
                    name("trial_end"),
                    name("trial_period_days")
                ),
                Some(&name("trial_end")),
            ));
        }
        (Some(days), None) if !(0..=MAX_DAYS).contains(&days) => {
            return Err(ApiError::invalid(
                format!("Invalid trial_period_days: must be between 0 and {MAX_DAYS}."),
                Some(&name("trial_period_days")),
            ));
        }
        (Some(0), None) | (None, None) | (None, Some("now")) => None,
        (Some(days), None) => Some(now + days * 86_400),
        (None, Some(at)) => Some(future_end(at, now, &name("trial_end"))?),
    };
    Ok(TrialRequest {
        end,
        missing_payment_method: behavior(params, prefix)?,
    })
}

/// `trial_settings[end_behavior][missing_payment_method]`, if given.
pub(super) fn behavior(params: &Form, prefix: &str) -> Result<Option<String>, ApiError> {
    let settings = params.sub("trial_settings").sub("end_behavior");
    match settings.get("missing_payment_method") {
        None => Ok(None),
        Some(behavior) if BEHAVIORS.contains(&behavior) => Ok(Some(behavior.to_owned())),
        Some(other) => {
            let param = "trial_settings[end_behavior][missing_payment_method]";
            let param = if prefix.is_empty() {
                param.to_owned()
            } else {
                format!("{prefix}[{param}]")
            };
            Err(ApiError::invalid(
                format!(
                    "Invalid {param}: must be one of {} (got {other})",
                    BEHAVIORS.join(", ")
                ),
                Some(&param),
            ))
        }
    }
}

/// A `trial_end` timestamp: in the future, within [`MAX_DAYS`].
fn future_end(at: &str, now: i64, param: &str) -> Result<i64, ApiError> {
    let at: i64 = at.parse().map_err(|_| {
        ApiError::invalid(
            format!("Invalid {param}: must be a Unix timestamp or now."),
            Some(param),
        )
    })?;
    if at <= now {
        return Err(ApiError::invalid(
            "Invalid timestamp: must be an integer Unix timestamp in the future.",
            Some(param),
        ));
    }
    if at > now + MAX_DAYS * 86_400 {
        return Err(ApiError::invalid(
            format!("Invalid {param}: a trial can last at most {MAX_DAYS} days."),
            Some(param),
        ));
    }
    Ok(at)
}

/// A new subscription's trial fields: `trialing` from `now` to `end`.
pub(super) fn start(sub: &mut Value, now: i64, end: i64) {
    sub["status"] = json!("trialing");
    sub["trial_start"] = json!(now);
    sub["trial_end"] = json!(end);
    sub["billing_cycle_anchor"] = json!(end);
}

/// Sets the end behaviour, if the request gave one.
pub(super) fn set_behavior(sub: &mut Value, trial: &TrialRequest) {
    if let Some(behavior) = &trial.missing_payment_method {
        sub["trial_settings"]["end_behavior"]["missing_payment_method"] = json!(behavior);
    }
}

/// Whether `sub` is in a trial that ends by itself.
pub(super) fn in_trial(sub: &Value) -> bool {
    sub["status"] == "trialing" && sub["trial_end"].is_i64()
}

/// How a trial ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ending {
    /// At `trial_end`, as scheduled: the paid period starts there.
    Scheduled,
    /// Now, by `trial_end=now`: the paid period starts now.
    Now,
}

/// See [`super::FakeStripe::trial_will_end`]: the event, once per subscription.
pub(super) fn will_end(state: &mut State, id: &str) -> Result<Vec<PendingEvent>, ApiError> {
    let sub = trialing(state, id)?;
    if !state.trial_will_end_sent.insert(id.to_owned()) {
        return Err(ApiError::invalid(
            format!("customer.subscription.trial_will_end was already sent for {id}."),
            None,
        ));
    }
    Ok(vec![PendingEvent::new(
        "customer.subscription.trial_will_end",
        &sub,
        &EventRequest::default(),
    )])
}

/// See [`super::FakeStripe::tick`]: what is due of every trial, oldest subscription first.
pub(super) fn tick(state: &mut State) -> Result<Vec<PendingEvent>, ApiError> {
    let now = state.now();
    let due: Vec<(String, i64)> = state
        .subscriptions
        .values()
        .filter(|s| in_trial(s))
        .filter_map(|s| Some((s["id"].as_str()?.to_owned(), s["trial_end"].as_i64()?)))
        .filter(|(_, end)| now >= end - WILL_END_BEFORE)
        .collect();
    let mut events = Vec::new();
    for (id, end) in due {
        if !state.trial_will_end_sent.contains(&id) {
            events.extend(will_end(state, &id)?);
        }
        if now >= end {
            let request = EventRequest::default();
            let (_, ended) = self::end(state, &id, Ending::Scheduled, &request, None)?;
            events.extend(ended);
        }
    }
    Ok(events)
}

/// The trial of subscription `id` ends (see the module's doc); returns the subscription as
/// it is then and the events, each carrying `request`. `reported_before` is what the
/// `customer.subscription.updated` compares with (an update that ends the trial and changes
/// more reports it all in one event), else the subscription as it is.
pub(super) fn end(
    state: &mut State,
    id: &str,
    ending: Ending,
    request: &EventRequest,
    reported_before: Option<&Value>,
) -> Result<(Value, Vec<PendingEvent>), ApiError> {
    let before = trialing(state, id)?;
    let reported = reported_before.unwrap_or(&before).clone();
    let now = state.now();
    let mut events = Vec::new();
    if state.trial_will_end_sent.insert(id.to_owned()) {
        events.push(PendingEvent::new(
            "customer.subscription.trial_will_end",
            &before,
            request,
        ));
    }
    let start = match ending {
        Ending::Scheduled => before["trial_end"].as_i64().unwrap_or(now),
        Ending::Now => now,
    };
    let pm = super::intents::payment_method_of(state, &before);
    let behavior = before["trial_settings"]["end_behavior"]["missing_payment_method"]
        .as_str()
        .unwrap_or("create_invoice")
        .to_owned();
    let moved_to_now = |sub: &mut Value| {
        if ending == Ending::Now {
            sub["trial_end"] = json!(now);
        }
    };
    if pm.is_none() && behavior == "cancel" {
        if let Some(sub) = state.subscriptions.get_mut(id) {
            moved_to_now(sub);
            sub["cancellation_details"]["reason"] = json!("cancellation_requested");
        }
        events.extend(lifecycle::end(state, id, request)?);
        return Ok((state.subscriptions[id].clone(), events));
    }
    if pm.is_none() && behavior == "pause" {
        let mut after = before.clone();
        moved_to_now(&mut after);
        after["status"] = json!("paused");
        state.subscriptions.insert(id.to_owned(), after.clone());
        events.push(PendingEvent::new(
            "customer.subscription.paused",
            &after,
            request,
        ));
        events.extend(updated_event(&reported, &after, request));
        return Ok((after, events));
    }
    // The first paid period.
    let mut after = before.clone();
    moved_to_now(&mut after);
    after["status"] = json!("active");
    if ending == Ending::Now {
        after["billing_cycle_anchor"] = json!(now);
    }
    let (reason, period) = match ending {
        Ending::Scheduled => (
            "subscription_cycle",
            (before["trial_start"].as_i64().unwrap_or(start), start),
        ),
        Ending::Now => ("subscription_update", (now, now)),
    };
    let (invoice_id, ended) = invoices::open_cycle(state, &mut after, |_| start, reason, period);
    events.extend(ended.into_iter().map(|mut e| {
        e.request = request.clone();
        e
    }));
    state.subscriptions.insert(id.to_owned(), after.clone());
    events.extend(updated_event(&reported, &after, request));
    let draft = state.invoices[&invoice_id].clone();
    events.push(PendingEvent::new("invoice.created", &draft, request));
    let due = draft["total"].as_i64().unwrap_or(0) > 0;
    let collected = if pm.is_none() && due {
        payments::fail_unattempted(state, &invoice_id)?
    } else {
        invoices::collect(state, &invoice_id)?
    };
    events.extend(collected.into_iter().map(|mut e| {
        e.request = request.clone();
        e
    }));
    Ok((state.subscriptions[id].clone(), events))
}

/// `trial_end=<timestamp>` on a trialing subscription (not stored here): the trial now ends
/// then; the items' periods and `billing_cycle_anchor` move with it.
pub(super) fn move_end(state: &mut State, sub: &mut Value, at: &str) -> Result<(), ApiError> {
    let now = state.now();
    let end = future_end(at, now, "trial_end")?;
    sub["trial_end"] = json!(end);
    sub["billing_cycle_anchor"] = json!(end);
    if let Some(items) = sub["items"]["data"].as_array_mut() {
        for item in items {
            item["current_period_end"] = json!(end);
            item["billed_until"] = json!(end);
        }
    }
    let id = sub["id"].as_str().unwrap_or_default();
    if end - WILL_END_BEFORE > now {
        state.trial_will_end_sent.remove(id);
    }
    Ok(())
}

/// Subscription `id` if it is in a trial, else why not.
fn trialing(state: &State, id: &str) -> Result<Value, ApiError> {
    let sub = state
        .subscriptions
        .get(id)
        .ok_or_else(|| ApiError::no_such("subscription", id, "id"))?;
    if !in_trial(sub) {
        return Err(ApiError::invalid(
            format!(
                "Subscription {id} is not in a trial (status {}).",
                sub["status"]
            ),
            None,
        ));
    }
    Ok(sub.clone())
}

/// The line a subscription item contributes to a trial's $0 invoice.
pub(super) fn line(mut line: Value, product_name: &str) -> Value {
    line["amount"] = json!(0);
    line["subtotal"] = json!(0);
    line["description"] = json!(format!("Trial period for {product_name}"));
    line
}
