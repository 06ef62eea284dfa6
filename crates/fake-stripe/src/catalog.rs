//! Customers, products and prices: the objects everything else refers to.

use serde_json::{Value, json};

use super::api::{Answer, ApiError, integer, required};
use super::form::{Form, MetadataUpdate};
use super::objects::{self, NewPrice};
use super::state::State;

pub(super) fn create_customer(state: &mut State, params: &Form) -> Result<Answer, ApiError> {
    let id = state.id("cus");
    let metadata = MetadataUpdate::new_object(params.metadata("metadata").as_ref());
    let mut customer = objects::customer(
        &id,
        state.now(),
        params.get("name"),
        params.get("email"),
        metadata,
    );
    apply_customer_fields(&mut customer, params);
    state.customers.insert(id, customer.clone());
    Ok(Answer::quiet(customer))
}

pub(super) fn update_customer(
    state: &mut State,
    params: &Form,
    id: &str,
) -> Result<Answer, ApiError> {
    let customer = state
        .customers
        .get_mut(id)
        .ok_or_else(|| ApiError::no_such("customer", id, "id"))?;
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
    apply_customer_fields(customer, params);
    Ok(Answer::quiet(customer.clone()))
}

/// Fields shared by create and update.
fn apply_customer_fields(customer: &mut Value, params: &Form) {
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

pub(super) fn create_product(state: &mut State, params: &Form) -> Result<Answer, ApiError> {
    let name = required(params, "name")?;
    let id = match params.get("id") {
        Some(id) if state.products.contains_key(id) => {
            return Err(ApiError::invalid(
                format!("Product already exists with id {id}."),
                Some("id"),
            ));
        }
        Some(id) => id.to_owned(),
        None => state.id("prod"),
    };
    let metadata = MetadataUpdate::new_object(params.metadata("metadata").as_ref());
    let product = objects::product(&id, state.now(), name, params.get("description"), metadata);
    state.products.insert(id, product.clone());
    Ok(Answer::quiet(product))
}

pub(super) fn create_price(state: &mut State, params: &Form) -> Result<Answer, ApiError> {
    let currency = required(params, "currency")?.to_lowercase();
    let product = required(params, "product")?;
    if !state.products.contains_key(product) {
        return Err(ApiError::no_such("product", product, "product"));
    }
    let unit_amount = match integer(params, "unit_amount")? {
        Some(amount) => amount,
        None => params
            .get("unit_amount_decimal")
            .and_then(|d| d.parse::<f64>().ok())
            .map(|d| d.round() as i64)
            .ok_or_else(|| ApiError::missing_param("unit_amount"))?,
    };
    let recurring = params.sub("recurring");
    let interval = match recurring.get("interval") {
        Some(interval @ ("day" | "week" | "month" | "year")) => Some((
            interval,
            integer(&recurring, "interval_count")?.unwrap_or(1),
        )),
        Some(other) => {
            return Err(ApiError::invalid(
                format!(
                    "Invalid recurring[interval]: must be one of day, week, month, or year (got {other})"
                ),
                Some("recurring[interval]"),
            ));
        }
        None => None,
    };
    let id = state.id("price");
    let price = objects::price(NewPrice {
        id: &id,
        created: state.now(),
        product,
        currency: &currency,
        unit_amount,
        interval,
        nickname: params.get("nickname"),
        lookup_key: params.get("lookup_key"),
        metadata: MetadataUpdate::new_object(params.metadata("metadata").as_ref()),
    });
    state.prices.insert(id, price.clone());
    Ok(Answer::quiet(price))
}
