//! Products and prices: the catalog subscriptions refer to (customers are in `customers`).

use super::api::{Answer, ApiError, integer, required};
use super::form::{Form, MetadataUpdate};
use super::objects::{self, NewPrice};
use super::state::State;

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
