//! `DELETE /v1/subscriptions/{id}`: the subscription is canceled now, as Stripe cancels it.
//!
//! The answer is the canceled subscription (`status` `canceled`, `ended_at` now,
//! `canceled_at` now unless a cancellation was requested earlier,
//! `cancellation_details.reason` `cancellation_requested`), with `expand[]` as on the other
//! subscription routes. Parameters:
//! - `prorate=true`: a credit for the unused time of each item, as a pending proration (see
//!   `prorations.rs`).
//! - `invoice_now=true`: the subscription's pending invoice items (those credits included)
//!   go on a final invoice at once, which is collected (see `invoices::collect`).
//! - neither: the subscription's pending prorations are deleted, as Stripe does.
//! - `cancellation_details[comment]` and `[feedback]` are kept on the subscription.
//!
//! Events, each carrying the request: `invoiceitem.created` (each credit),
//! `invoiceitem.deleted` (each dropped proration), `customer.subscription.deleted`, then
//! with a final invoice `invoice.created` and `invoice.paid` (or the failed charge's events).
//!
//! An unknown id, or a subscription that has already ended, is Stripe's 404 `No such
//! subscription`: Stripe treats a canceled subscription as gone for this endpoint, though it
//! can still be retrieved.

use serde_json::{Value, json};

use super::api::{Answer, ApiError, Call, boolean};
use super::expand;
use super::form::Form;
use super::invoices;
use super::lifecycle;
use super::prorations;
use super::state::State;

/// The reasons Stripe takes in `cancellation_details[feedback]`.
const FEEDBACK: &[&str] = &[
    "customer_service",
    "low_quality",
    "missing_features",
    "other",
    "switched_service",
    "too_complex",
    "too_expensive",
    "unused",
];

pub(super) fn cancel(state: &mut State, call: &Call<'_>, id: &str) -> Result<Answer, ApiError> {
    let params = call.params;
    expand::check_subscription(params)?;
    let invoice_now = boolean(params, "invoice_now")?.unwrap_or(false);
    let prorate = boolean(params, "prorate")?.unwrap_or(false);
    let details = cancellation_details(params)?;
    let sub = state
        .subscriptions
        .get(id)
        .cloned()
        .filter(|s| {
            !matches!(
                s["status"].as_str(),
                Some("canceled" | "incomplete_expired")
            )
        })
        .ok_or_else(|| ApiError::no_such("subscription", id, "id"))?;
    let request = &call.request;
    let mut events = Vec::new();
    if prorate && prorations::applies(&sub) {
        let credits = prorations::for_cancel(state, &sub);
        events.extend(prorations::created_events(&credits, request));
    }
    if !prorate && !invoice_now {
        events.extend(prorations::discard_pending(state, id, request));
    }
    let draft = invoice_now
        .then(|| invoices::draft_pending(state, id, "subscription_update"))
        .flatten();
    if let Some(sub) = state.subscriptions.get_mut(id) {
        for (key, value) in details {
            sub["cancellation_details"][key] = value;
        }
    }
    events.extend(lifecycle::end(state, id, request)?);
    if let Some(draft) = draft {
        events.extend(invoices::collect_now(state, &draft, request)?);
    }
    let canceled = state.subscriptions.get(id).cloned().unwrap_or(sub);
    Ok(Answer {
        body: expand::subscription(state, canceled, params)?,
        events,
    })
}

/// `cancellation_details[comment]` and `[feedback]`, checked before anything changes.
fn cancellation_details(params: &Form) -> Result<Vec<(&'static str, Value)>, ApiError> {
    let details = params.sub("cancellation_details");
    let mut set = Vec::new();
    if let Some(comment) = details.get("comment") {
        // An empty value unsets it, as everywhere in Stripe's forms.
        let comment = (!comment.is_empty()).then(|| json!(comment));
        set.push(("comment", comment.unwrap_or(Value::Null)));
    }
    if let Some(feedback) = details.get("feedback") {
        if !FEEDBACK.contains(&feedback) {
            return Err(ApiError::invalid(
                format!(
                    "Invalid cancellation_details[feedback]: must be one of {}",
                    FEEDBACK.join(", ")
                ),
                Some("cancellation_details[feedback]"),
            ));
        }
        set.push(("feedback", json!(feedback)));
    }
    Ok(set)
}
