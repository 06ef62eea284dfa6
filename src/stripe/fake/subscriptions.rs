//! The subscription endpoints: create, list, update (retrieve is generic, in `api.rs`).
//!
//! Creating starts the subscription through `lifecycle::start`: `active` when the customer
//! has a default payment method (unless `payment_behavior=default_incomplete`), else
//! `incomplete`. Updates send `customer.subscription.updated` with `previous_attributes`.

use serde_json::{Value, json};

use super::api::{Answer, ApiError, Call, integer, required};
use super::billing;
use super::form::{Form, MetadataUpdate};
use super::lifecycle::{self, Start, updated_event};
use super::objects::{self, plan};
use super::state::{State, now};

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
    let has_payment_method = params.get("default_payment_method").is_some()
        || state
            .customers
            .get(customer)
            .is_some_and(|c| !c["invoice_settings"]["default_payment_method"].is_null());
    let pay = has_payment_method && params.get("payment_behavior") != Some("default_incomplete");
    let (subscription, _, events) = lifecycle::start(
        state,
        Start {
            customer,
            items,
            metadata: MetadataUpdate::new_object(params.metadata("metadata").as_ref()),
            pay,
            default_payment_method: params.get("default_payment_method").map(str::to_owned),
            request: &call.request,
        },
    )?;
    Ok(Answer {
        body: subscription,
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

pub(super) fn update(state: &mut State, call: &Call<'_>, id: &str) -> Result<Answer, ApiError> {
    let params = call.params;
    let before = state
        .subscriptions
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::no_such("subscription", id, "id"))?;
    let mut sub = before.clone();
    if sub["status"] == "canceled" && (params.has("items") || params.has("cancel_at_period_end")) {
        return Err(ApiError::invalid(
            "A canceled subscription can only update its cancellation_details and metadata.",
            None,
        ));
    }
    let items = change_items(state, &sub, params)?;
    let period_end = items[0]["current_period_end"].clone();
    sub["items"] = billing::items_list(id, items);
    if let Some(update) = params.metadata("metadata") {
        update.apply(&mut sub["metadata"]);
    }
    match params.get_bool("cancel_at_period_end") {
        Some(true) if sub["cancel_at_period_end"] != true => {
            sub["cancel_at_period_end"] = json!(true);
            sub["cancel_at"] = period_end;
            sub["canceled_at"] = json!(now());
            sub["cancellation_details"]["reason"] = json!("cancellation_requested");
        }
        Some(false) => {
            sub["cancel_at_period_end"] = json!(false);
            sub["cancel_at"] = Value::Null;
            sub["canceled_at"] = Value::Null;
            sub["cancellation_details"]["reason"] = Value::Null;
        }
        _ => {}
    }
    state.subscriptions.insert(id.to_owned(), sub.clone());
    let events = updated_event(&before, &sub, &call.request)
        .into_iter()
        .collect();
    Ok(Answer { body: sub, events })
}

/// The items after `items[i][...]`: with `id`, change that item's price or quantity (or
/// delete it); without, add an item on the current period. Prorations are not modelled.
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
                    now(),
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
