//! The subscription endpoints: create, retrieve, list, update, resume.
//!
//! Creating starts the subscription through `lifecycle::start`, charging the first invoice
//! with the `default_payment_method` parameter or the customer's default, as its kind says
//! (see `intents::outcome_of`): `payment_behavior=default_incomplete` attempts no charge,
//! `error_if_incomplete` refuses with a 402 what does not succeed at once (a bank debit,
//! which only settles later, is let through), `allow_incomplete` (or none) keeps the
//! subscription `incomplete`. With a trial (`trial_period_days`, `trial_end`) nothing is
//! charged and no payment method is needed (see `trials.rs`); `discounts[...]` redeems
//! coupons and promotion codes (see `discounts.rs`). Updates send
//! `customer.subscription.updated` with `previous_attributes`, prorate item changes (see
//! `prorations.rs`), replace discounts and move or end a trial; canceling is in
//! `cancellation.rs`. Answers honour `expand[]` (see `expand.rs`).

use serde_json::{Value, json};

use super::api::{Answer, ApiError, Call, integer, required};
use super::billing;
use super::discounts;
use super::expand;
use super::form::{Form, MetadataUpdate};
use super::intents::{self, Outcome};
use super::invoices;
use super::lifecycle::{self, Start, updated_event};
use super::objects::{self, plan};
use super::prorations::{self, Behavior};
use super::state::State;
use super::transitions;
use super::trials::{self, Ending};
use super::webhooks::{EventRequest, PendingEvent};

pub(super) fn create(state: &mut State, call: &Call<'_>) -> Result<Answer, ApiError> {
    let params = call.params;
    let customer = required(params, "customer")?;
    let mut items = Vec::new();
    for (i, item) in params.list("items").iter().enumerate() {
        let param = format!("items[{i}][price]");
        let price = item
            .get("price")
            .ok_or_else(|| ApiError::missing_param(&param))?;
        items.push((
            price.to_owned(),
            integer(item, "quantity")?.unwrap_or(1),
            param,
        ));
    }
    expand::check_subscription(params)?;
    let trial = trials::requested(params, state.now(), "")?;
    let currency = items
        .first()
        .and_then(|(price, _, _)| state.prices.get(price))
        .and_then(|price| price["currency"].as_str())
        .map(str::to_owned);
    let discounts = discounts::requested(state, params, Some(customer), currency.as_deref(), None)?
        .unwrap_or_default();
    // A trial's first invoice is $0: nothing is charged, whatever payment_behavior says.
    let outcome = match trial.end {
        Some(_) => Outcome::NotAttempted,
        None => first_charge(state, params, customer)?,
    };
    let (subscription, _, events) = lifecycle::start(
        state,
        Start {
            customer,
            items,
            metadata: MetadataUpdate::new_object(params.metadata("metadata").as_ref()),
            outcome,
            default_payment_method: params.get("default_payment_method").map(str::to_owned),
            trial,
            discounts,
            request: &call.request,
        },
    )?;
    Ok(Answer {
        body: expand::subscription(state, subscription, params)?,
        events,
    })
}

/// What charging a new subscription's first invoice will come to, or the 402 of
/// `payment_behavior=error_if_incomplete`.
fn first_charge(state: &State, params: &Form, customer: &str) -> Result<Outcome, ApiError> {
    let pm = params.get("default_payment_method").or_else(|| {
        state.customers.get(customer)?["invoice_settings"]["default_payment_method"].as_str()
    });
    let outcome = intents::outcome_of(intents::kind_of(state, pm));
    match (params.get("payment_behavior"), outcome) {
        (Some("default_incomplete"), _) => Ok(Outcome::NotAttempted),
        (Some("error_if_incomplete"), Outcome::Declined) => Err(ApiError::card_error(
            "card_declined",
            Some("generic_decline"),
            "Your card was declined.",
        )),
        (Some("error_if_incomplete"), Outcome::RequiresAction) => Err(ApiError::card_error(
            "authentication_required",
            Some("authentication_required"),
            "Your card was declined. This transaction requires authentication.",
        )),
        (Some("error_if_incomplete"), Outcome::NotAttempted) => Err(ApiError::invalid(
            "This customer has no attached payment source or default payment method.",
            None,
        )),
        (_, outcome) => Ok(outcome),
    }
}

/// `GET /v1/subscriptions/{id}`, with `expand[]`.
pub(super) fn retrieve(state: &State, params: &Form, id: &str) -> Result<Answer, ApiError> {
    let sub = state
        .subscriptions
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::no_such("subscription", id, "id"))?;
    Ok(Answer::quiet(expand::subscription(state, sub, params)?))
}

/// `POST /v1/subscriptions/{id}/resume`: see [`super::FakeStripe::resume_subscription`].
pub(super) fn resume(state: &mut State, call: &Call<'_>, id: &str) -> Result<Answer, ApiError> {
    expand::check_subscription(call.params)?;
    let (sub, events) = transitions::resume(state, id, &call.request)?;
    Ok(Answer {
        body: expand::subscription(state, sub, call.params)?,
        events,
    })
}

/// `GET /v1/subscriptions`: newest first; without `status`, canceled ones are left out.
pub(super) fn list(state: &State, params: &Form) -> Result<Answer, ApiError> {
    let limit = integer(params, "limit")?.unwrap_or(10).clamp(1, 100) as usize;
    let status = params.get("status");
    let mut matching: Vec<&Value> = state
        .subscriptions
        .values()
        .filter(|s| params.get("customer").is_none_or(|c| s["customer"] == c))
        .filter(|s| match status {
            None => s["status"] != "canceled",
            Some("all") => true,
            Some(status) => s["status"] == status,
        })
        .collect();
    matching.reverse();
    if let Some(after) = params.get("starting_after") {
        let position = matching.iter().position(|s| s["id"] == after);
        matching = position
            .map(|p| matching.split_off(p + 1))
            .unwrap_or_default();
    }
    let has_more = matching.len() > limit;
    let data = matching.into_iter().take(limit).cloned().collect();
    Ok(Answer::quiet(objects::list(
        "/v1/subscriptions",
        data,
        has_more,
    )))
}

/// `POST /v1/subscriptions/{id}`. A change of an item's price or quantity mid-period
/// prorates as `proration_behavior` says (see `prorations.rs`); `discounts` replaces the
/// subscription's discounts (see `discounts.rs`); `trial_end` moves a trial's end, or ends
/// it with `now` (see `trials.rs`); `trial_settings` changes its end behaviour. Events, each
/// carrying the request: `invoiceitem.created` (each proration), then
/// `customer.subscription.updated` (if anything changed), `customer.discount.deleted` and
/// `.created` (discounts replaced), and with `always_invoice` the new invoice's
/// `invoice.created` then its collection's (`invoice.paid`, or the failed charge's). With
/// `trial_end=now` the trial's end replaces that update (`trial_will_end`, the one
/// `customer.subscription.updated` with every change, the discount events, then the
/// invoice's).
pub(super) fn update(state: &mut State, call: &Call<'_>, id: &str) -> Result<Answer, ApiError> {
    let params = call.params;
    expand::check_subscription(params)?;
    let behavior = Behavior::from(params)?;
    let before = state
        .subscriptions
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::no_such("subscription", id, "id"))?;
    let mut sub = before.clone();
    let cancels = params.has("cancel_at_period_end") || params.has("cancel_at");
    let trial_end = params.get("trial_end").filter(|v| !v.is_empty());
    let changes_billing = params.has("items")
        || cancels
        || params.has("discounts")
        || trial_end.is_some()
        || params.has("trial_settings");
    if sub["status"] == "canceled" && changes_billing {
        return Err(ApiError::invalid(
            "A canceled subscription can only update its cancellation_details and metadata.",
            None,
        ));
    }
    if trial_end.is_some() && !trials::in_trial(&before) {
        return Err(ApiError::invalid(
            format!(
                "The fake Stripe only moves or ends a trial that is running; subscription {id} \
                 is {}.",
                before["status"]
            ),
            Some("trial_end"),
        ));
    }
    let wanted = discounts::requested(
        state,
        params,
        before["customer"].as_str(),
        before["currency"].as_str(),
        Some(&before),
    )?;
    let end_behavior = trials::behavior(params, "")?;
    let items = change_items(state, &sub, params)?;
    let period_end = items[0]["current_period_end"].clone();
    sub["items"] = billing::items_list(id, items);
    if let Some(update) = params.metadata("metadata") {
        update.apply(&mut sub["metadata"]);
    }
    match params.get_bool("cancel_at_period_end") {
        Some(true) if sub["cancel_at_period_end"] != true => {
            cancel_at(&mut sub, period_end, state.now());
            sub["cancel_at_period_end"] = json!(true);
        }
        Some(false) => uncancel(&mut sub),
        _ => {}
    }
    match params.get("cancel_at") {
        Some("") => uncancel(&mut sub),
        Some(at) => {
            let at = cancel_at_param(&sub, at)?;
            cancel_at(&mut sub, json!(at), state.now());
        }
        None => {}
    }
    if let Some(at) = trial_end.filter(|at| *at != "now") {
        trials::move_end(state, &mut sub, at)?;
    }
    if let Some(behavior) = end_behavior {
        sub["trial_settings"]["end_behavior"]["missing_payment_method"] = json!(behavior);
    }
    let request = &call.request;
    let discount_events = match &wanted {
        Some(wanted) => discounts::replace(state, &mut sub, wanted, request),
        None => Vec::new(),
    };
    state.subscriptions.insert(id.to_owned(), sub);
    let prorated = prorate(state, &before, behavior);
    let mut events = prorations::created_events(&prorated, request);
    if trial_end == Some("now") {
        let (sub, ended) = trials::end(state, id, Ending::Now, request, Some(&before))?;
        // The discount events follow the subscription's own event.
        let at = ended
            .iter()
            .position(|e| {
                matches!(
                    e.type_,
                    "customer.subscription.updated" | "customer.subscription.deleted"
                )
            })
            .map_or(ended.len(), |i| i + 1);
        let mut ended = ended;
        ended.splice(at..at, discount_events);
        events.extend(ended);
        return Ok(Answer {
            body: expand::subscription(state, sub, params)?,
            events,
        });
    }
    let draft = (behavior == Behavior::AlwaysInvoice && !prorated.is_empty())
        .then(|| invoices::draft_pending(state, id, "subscription_update"))
        .flatten();
    let sub = state.subscriptions[id].clone();
    events.extend(updated_event(&before, &sub, request));
    events.extend(discount_events);
    if let Some(draft) = draft {
        events.extend(invoices::collect_now(state, &draft, request)?);
    }
    let sub = state.subscriptions[id].clone();
    Ok(Answer {
        body: expand::subscription(state, sub, params)?,
        events,
    })
}

/// The prorations of the item changes just stored over `before`, as `behavior` says.
fn prorate(state: &mut State, before: &Value, behavior: Behavior) -> Vec<Value> {
    if behavior == Behavior::None || !prorations::applies(before) {
        return Vec::new();
    }
    let id = before["id"].as_str().unwrap_or_default();
    let items = |sub: &Value| sub["items"]["data"].as_array().cloned().unwrap_or_default();
    let after = state.subscriptions.get(id).map(items).unwrap_or_default();
    prorations::for_change(state, before, &items(before), &after)
}

/// See [`super::FakeStripe::set_cancel_at`].
pub(super) fn set_cancel_at(
    state: &mut State,
    id: &str,
    at: i64,
) -> Result<Vec<PendingEvent>, ApiError> {
    let before = state
        .subscriptions
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::no_such("subscription", id, "id"))?;
    if matches!(
        before["status"].as_str(),
        Some("canceled" | "incomplete_expired")
    ) {
        return Err(ApiError::invalid(
            format!("Subscription {id} has ended."),
            None,
        ));
    }
    let mut sub = before.clone();
    cancel_at(&mut sub, json!(at), state.now());
    state.subscriptions.insert(id.to_owned(), sub.clone());
    Ok(updated_event(&before, &sub, &EventRequest::default())
        .into_iter()
        .collect())
}

/// The subscription will end at `at` (a timestamp): requested now.
fn cancel_at(sub: &mut Value, at: Value, now: i64) {
    sub["cancel_at"] = at;
    sub["cancel_at_period_end"] = json!(false);
    sub["canceled_at"] = json!(now);
    sub["cancellation_details"]["reason"] = json!("cancellation_requested");
}

/// The subscription will not end after all.
fn uncancel(sub: &mut Value) {
    sub["cancel_at_period_end"] = json!(false);
    sub["cancel_at"] = Value::Null;
    sub["canceled_at"] = Value::Null;
    sub["cancellation_details"]["reason"] = Value::Null;
}

/// `cancel_at`: unix seconds, or `min_period_end` / `max_period_end` / `max_billed_until`
/// over the items.
fn cancel_at_param(sub: &Value, at: &str) -> Result<i64, ApiError> {
    let items = sub["items"]["data"].as_array().cloned().unwrap_or_default();
    let of = |key: &'static str| items.iter().filter_map(move |i| i[key].as_i64());
    let at = match at {
        "min_period_end" => of("current_period_end").min(),
        "max_period_end" => of("current_period_end").max(),
        "max_billed_until" => of("billed_until").max(),
        seconds => seconds.parse().ok(),
    };
    at.ok_or_else(|| ApiError::invalid("Invalid cancel_at.", Some("cancel_at")))
}

/// The items after `items[i][...]`: with `id`, change that item's price or quantity (or
/// delete it); without, add an item on the current period. An item keeps its period, even
/// for a price of another interval (Stripe would reset the billing cycle).
fn change_items(state: &mut State, sub: &Value, params: &Form) -> Result<Vec<Value>, ApiError> {
    let mut items: Vec<Value> = sub["items"]["data"].as_array().cloned().unwrap_or_default();
    let Some(first) = items.first() else {
        return Ok(items);
    };
    let (start, end) = (
        first["current_period_start"].as_i64().unwrap_or_default(),
        first["current_period_end"].as_i64().unwrap_or_default(),
    );
    for (i, change) in params.list("items").iter().enumerate() {
        let price =
            match change.get("price") {
                Some(p) => {
                    Some(state.prices.get(p).cloned().ok_or_else(|| {
                        ApiError::no_such("price", p, &format!("items[{i}][price]"))
                    })?)
                }
                None => None,
            };
        let quantity = integer(change, "quantity")?;
        let position = match change.get("id") {
            Some(item_id) => Some(items.iter().position(|it| it["id"] == item_id).ok_or_else(
                || ApiError::no_such("subscription_item", item_id, &format!("items[{i}][id]")),
            )?),
            None => None,
        };
        match (position, price) {
            (Some(p), _) if change.get_bool("deleted") == Some(true) => {
                items.remove(p);
            }
            (Some(p), price) => {
                if let Some(price) = price {
                    items[p]["plan"] = plan(&price);
                    items[p]["price"] = price;
                }
                if let Some(quantity) = quantity {
                    items[p]["quantity"] = json!(quantity);
                }
            }
            (None, Some(price)) => {
                let item_id = state.id("si");
                let sub_id = sub["id"].as_str().unwrap_or_default();
                let quantity = quantity.unwrap_or(1);
                let item = billing::subscription_item(
                    &item_id,
                    state.now(),
                    sub_id,
                    &price,
                    quantity,
                    (start, end),
                );
                items.push(item);
            }
            (None, None) => return Err(ApiError::missing_param(&format!("items[{i}][price]"))),
        }
    }
    if items.is_empty() {
        return Err(ApiError::invalid(
            "A subscription must have at least one active plan.",
            Some("items"),
        ));
    }
    Ok(items)
}
