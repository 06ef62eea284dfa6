//! Customers: created, updated and deleted through the API or in the dashboard, each change
//! with Stripe's event (`customer.created`, `customer.updated` with `previous_attributes`,
//! `customer.deleted`), and subscriptions made in the dashboard.
//!
//! A deleted customer leaves `State::customers` for `State::deleted_customers`: retrieving
//! it answers `{"id", "object": "customer", "deleted": true}`; anything that names it
//! (an update, a subscription, a checkout) gets `No such customer`. Its subscriptions that
//! have not ended are canceled first, as Stripe does.
//!
//! Changes Stripe makes to a customer on its own (its `currency` at the first subscription,
//! `next_invoice_sequence`, the default payment method a checkout saves) send no
//! `customer.updated` in the fake.

use serde_json::{Map, Value, json};

use super::api::{Answer, ApiError};
use super::checkout;
use super::form::{Form, MetadataUpdate};
use super::intents;
use super::lifecycle::{self, Start, previous_attributes};
use super::objects;
use super::state::State;
use super::webhooks::{EventRequest, PendingEvent};

/// `POST /v1/customers`: `customer.created`.
pub(super) fn create(
    state: &mut State,
    params: &Form,
    request: &EventRequest,
) -> Result<Answer, ApiError> {
    let metadata = MetadataUpdate::new_object(params.metadata("metadata").as_ref());
    let (customer, created) = open(
        state,
        params.get("name"),
        params.get("email"),
        metadata,
        request,
        |customer| apply_fields(customer, params),
    );
    Ok(Answer {
        body: customer,
        events: vec![created],
    })
}

/// A new customer, stored, and its `customer.created`; `fill` sets more fields first.
pub(super) fn open(
    state: &mut State,
    name: Option<&str>,
    email: Option<&str>,
    metadata: Value,
    request: &EventRequest,
    fill: impl FnOnce(&mut Value),
) -> (Value, PendingEvent) {
    let id = state.id("cus");
    let mut customer = objects::customer(&id, state.now(), name, email, metadata);
    fill(&mut customer);
    state.customers.insert(id, customer.clone());
    let event = PendingEvent::new("customer.created", &customer, request);
    (customer, event)
}

/// `GET /v1/customers/{id}`: the customer, or the deleted stub of a deleted one.
pub(super) fn retrieve(state: &State, id: &str) -> Result<Answer, ApiError> {
    state
        .customers
        .get(id)
        .or_else(|| state.deleted_customers.get(id))
        .map(|customer| Answer::quiet(customer.clone()))
        .ok_or_else(|| ApiError::no_such("customer", id, "id"))
}

/// `POST /v1/customers/{id}`: `customer.updated` if anything changed.
pub(super) fn update(
    state: &mut State,
    params: &Form,
    id: &str,
    request: &EventRequest,
) -> Result<Answer, ApiError> {
    let (customer, events) = change(state, id, request, |customer| {
        for key in ["name", "email"] {
            if let Some(value) = params.get(key) {
                customer[key] = if value.is_empty() {
                    Value::Null
                } else {
                    json!(value)
                };
            }
        }
        if let Some(update) = params.metadata("metadata") {
            update.apply(&mut customer["metadata"]);
        }
        apply_fields(customer, params);
    })?;
    Ok(Answer {
        body: customer,
        events,
    })
}

/// `DELETE /v1/customers/{id}`: see [`delete`].
pub(super) fn delete_api(
    state: &mut State,
    id: &str,
    request: &EventRequest,
) -> Result<Answer, ApiError> {
    let events = delete(state, id, request)?;
    Ok(Answer {
        body: deleted_object(id),
        events,
    })
}

/// Deletes a customer: `customer.subscription.deleted` for each of its subscriptions that
/// has not ended (oldest first), then `customer.deleted` (the customer as it was).
pub(super) fn delete(
    state: &mut State,
    id: &str,
    request: &EventRequest,
) -> Result<Vec<PendingEvent>, ApiError> {
    let customer = state
        .customers
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::no_such("customer", id, "id"))?;
    let ending: Vec<String> = state
        .subscriptions
        .values()
        .filter(|s| s["customer"] == id)
        .filter(|s| {
            !matches!(
                s["status"].as_str(),
                Some("canceled" | "incomplete_expired")
            )
        })
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect();
    let mut events = Vec::new();
    for sub in ending {
        events.extend(lifecycle::end(state, &sub, request)?);
    }
    state.customers.remove(id);
    state
        .deleted_customers
        .insert(id.to_owned(), deleted_object(id));
    events.push(PendingEvent::new("customer.deleted", &customer, request));
    Ok(events)
}

fn deleted_object(id: &str) -> Value {
    json!({"id": id, "object": "customer", "deleted": true})
}

/// What the dashboard's own API request looks like in an event: an id and a generated key.
pub(super) fn dashboard_request(state: &mut State) -> EventRequest {
    EventRequest {
        id: Some(state.id("req")),
        idempotency_key: Some(state.uuid()),
    }
}

/// See [`super::FakeStripe::create_customer_in_dashboard`].
pub(super) fn create_in_dashboard(
    state: &mut State,
    name: Option<&str>,
    email: Option<&str>,
    metadata: &[(&str, &str)],
) -> Result<(String, Vec<PendingEvent>), ApiError> {
    let request = dashboard_request(state);
    let (customer, created) = open(state, name, email, pairs(metadata), &request, |_| {});
    let id = customer["id"].as_str().unwrap_or_default().to_owned();
    Ok((id, vec![created]))
}

/// See [`super::FakeStripe::update_customer_in_dashboard`].
pub(super) fn update_in_dashboard(
    state: &mut State,
    id: &str,
    name: Option<&str>,
    email: Option<&str>,
) -> Result<Vec<PendingEvent>, ApiError> {
    let request = dashboard_request(state);
    let (_, events) = change(state, id, &request, |customer| {
        if let Some(name) = name {
            customer["name"] = json!(name);
        }
        if let Some(email) = email {
            customer["email"] = json!(email);
        }
    })?;
    Ok(events)
}

/// See [`super::FakeStripe::subscribe_in_dashboard`].
pub(super) fn subscribe_in_dashboard(
    state: &mut State,
    customer: &str,
    price: &str,
    metadata: &[(&str, &str)],
) -> Result<(String, Vec<PendingEvent>), ApiError> {
    // Checked before the customer may be given a card, so a refusal changes nothing.
    if !state.customers.contains_key(customer) {
        return Err(ApiError::no_such("customer", customer, "customer"));
    }
    let recurring = state.prices.get(price).map(|p| p["type"] == "recurring");
    match recurring {
        None => return Err(ApiError::no_such("price", price, "items[0][price]")),
        Some(false) => {
            return Err(ApiError::invalid(
                format!("Price {price} is not recurring."),
                Some("items[0][price]"),
            ));
        }
        Some(true) => {}
    }
    let existing = state.customers[customer]["invoice_settings"]["default_payment_method"]
        .as_str()
        .map(str::to_owned);
    let pm = existing.unwrap_or_else(|| checkout::set_default_payment_method(state, customer));
    let outcome = intents::outcome_of(intents::kind_of(state, Some(&pm)));
    let request = dashboard_request(state);
    let (subscription, _, events) = lifecycle::start(
        state,
        Start {
            customer,
            items: vec![(price.to_owned(), 1, "items[0][price]".to_owned())],
            metadata: pairs(metadata),
            outcome,
            default_payment_method: None,
            trial: Default::default(),
            discounts: Vec::new(),
            request: &request,
        },
    )?;
    let id = subscription["id"].as_str().unwrap_or_default().to_owned();
    Ok((id, events))
}

/// Applies `edit` to a live customer; `customer.updated` with what changed, if anything did.
fn change(
    state: &mut State,
    id: &str,
    request: &EventRequest,
    edit: impl FnOnce(&mut Value),
) -> Result<(Value, Vec<PendingEvent>), ApiError> {
    let customer = state
        .customers
        .get_mut(id)
        .ok_or_else(|| ApiError::no_such("customer", id, "id"))?;
    let before = customer.clone();
    edit(customer);
    let after = customer.clone();
    let events = previous_attributes(&before, &after)
        .map(|previous| {
            let mut event = PendingEvent::new("customer.updated", &after, request);
            event.previous_attributes = Some(previous);
            event
        })
        .into_iter()
        .collect();
    Ok((after, events))
}

/// Fields shared by create and update.
fn apply_fields(customer: &mut Value, params: &Form) {
    if let Some(description) = params.get("description") {
        customer["description"] = json!(description);
    }
    if let Some(pm) = params.get("invoice_settings[default_payment_method]") {
        customer["invoice_settings"]["default_payment_method"] = if pm.is_empty() {
            Value::Null
        } else {
            json!(pm)
        };
    }
}

fn pairs(metadata: &[(&str, &str)]) -> Value {
    let map: Map<String, Value> = metadata
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    Value::Object(map)
}
