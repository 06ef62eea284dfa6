//! Coupons (`/v1/coupons`), shaped as API version `2026-09-30.endive` renders them
//! (`stripe_shared::Coupon`), and the checks a redemption makes (see `discounts.rs`, which
//! turns them into discounts; promotion codes, which name a coupon, are `promotion_codes.rs`).
//!
//! Coupons: `POST` (`id` optional, else an 8-character code; `percent_off`, or `amount_off`
//! with `currency`; `duration` `once` (the default), `forever` or `repeating` with
//! `duration_in_months`; `name`, `metadata`, `max_redemptions`, `redeem_by`), `GET`,
//! `POST /{id}` (`name`, `metadata`) and `DELETE` (`coupon.deleted`; discounts already made
//! from it go on, as Stripe's do; new redemptions get `No such coupon`). Events:
//! `coupon.created`, `coupon.updated`, `coupon.deleted`.
//!
//! Error messages are the fake's wording where Stripe's exact text is not documented; the
//! `type`, `code` and `param` follow Stripe's conventions.

use serde_json::{Value, json};

use super::api::{self, Answer, ApiError, integer};
use super::form::{Form, MetadataUpdate};
use super::lifecycle::previous_attributes;
use super::state::State;
use super::webhooks::{EventRequest, PendingEvent};

/// `POST /v1/coupons`: `coupon.created`.
pub(super) fn create(
    state: &mut State,
    params: &Form,
    request: &EventRequest,
) -> Result<Answer, ApiError> {
    let percent_off = match params.get("percent_off") {
        Some(text) => Some(
            text.parse::<f64>()
                .ok()
                .filter(|p| p.is_finite())
                .ok_or_else(|| {
                    ApiError::invalid(format!("Invalid decimal: {text}"), Some("percent_off"))
                })?,
        ),
        None => None,
    };
    let amount_off = integer(params, "amount_off")?;
    let currency = params
        .get("currency")
        .filter(|c| !c.is_empty())
        .map(str::to_lowercase);
    match (percent_off, amount_off) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "You may only specify one of these parameters: amount_off, percent_off.",
                Some("amount_off"),
            ));
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "You must specify either percent_off or amount_off.",
                None,
            ));
        }
        (Some(p), None) if !(p > 0.0 && p <= 100.0) => {
            return Err(ApiError::invalid(
                "Invalid percent_off: must be greater than 0 and at most 100.",
                Some("percent_off"),
            ));
        }
        (None, Some(a)) if a < 1 => {
            return Err(ApiError::invalid(
                "Invalid amount_off: must be at least 1.",
                Some("amount_off"),
            ));
        }
        (None, Some(_)) if currency.is_none() => {
            return Err(ApiError::invalid(
                "You must specify a currency when creating an amount_off coupon.",
                Some("currency"),
            ));
        }
        _ => {}
    }
    let duration = params.get("duration").unwrap_or("once");
    if !matches!(duration, "once" | "forever" | "repeating") {
        return Err(ApiError::invalid(
            format!(
                "Invalid duration: must be one of forever, once, or repeating (got {duration})"
            ),
            Some("duration"),
        ));
    }
    let months = integer(params, "duration_in_months")?;
    match (duration, months) {
        ("repeating", None) => return Err(ApiError::missing_param("duration_in_months")),
        ("repeating", Some(m)) if m < 1 => {
            return Err(ApiError::invalid(
                "Invalid duration_in_months: must be at least 1.",
                Some("duration_in_months"),
            ));
        }
        ("once" | "forever", Some(_)) => {
            return Err(ApiError::invalid(
                "duration_in_months can only be given when duration is repeating.",
                Some("duration_in_months"),
            ));
        }
        _ => {}
    }
    let max_redemptions = integer(params, "max_redemptions")?;
    if max_redemptions.is_some_and(|m| m < 1) {
        return Err(ApiError::invalid(
            "Invalid max_redemptions: must be at least 1.",
            Some("max_redemptions"),
        ));
    }
    let redeem_by = integer(params, "redeem_by")?;
    let id = match params.get("id").filter(|id| !id.is_empty()) {
        Some(id) if state.coupons.contains_key(id) || state.deleted_coupons.contains_key(id) => {
            return Err(ApiError {
                code: Some("resource_already_exists"),
                ..ApiError::invalid("Coupon already exists.", Some("id"))
            });
        }
        Some(id) => id.to_owned(),
        None => state.code(),
    };
    let coupon = json!({
        "id": id, "object": "coupon", "amount_off": amount_off, "created": state.now(),
        "currency": if amount_off.is_some() { json!(currency) } else { Value::Null },
        "duration": duration, "duration_in_months": months, "livemode": false,
        "max_redemptions": max_redemptions,
        "metadata": MetadataUpdate::new_object(params.metadata("metadata").as_ref()),
        "name": params.get("name").filter(|n| !n.is_empty()),
        "percent_off": percent_off, "redeem_by": redeem_by, "times_redeemed": 0, "valid": true
    });
    state.coupons.insert(id, coupon.clone());
    Ok(Answer {
        events: vec![PendingEvent::new("coupon.created", &coupon, request)],
        body: coupon,
    })
}

/// `GET /v1/coupons/{id}`: a deleted coupon is `No such coupon`.
pub(super) fn retrieve(state: &State, id: &str) -> Result<Answer, ApiError> {
    api::retrieve(&state.coupons, "coupon", id)
}

/// `POST /v1/coupons/{id}`: `name` and `metadata` (the rest of a coupon cannot change);
/// `coupon.updated` if anything changed.
pub(super) fn update(
    state: &mut State,
    params: &Form,
    id: &str,
    request: &EventRequest,
) -> Result<Answer, ApiError> {
    let coupon = state
        .coupons
        .get_mut(id)
        .ok_or_else(|| ApiError::no_such("coupon", id, "id"))?;
    let before = coupon.clone();
    if let Some(name) = params.get("name") {
        coupon["name"] = if name.is_empty() {
            Value::Null
        } else {
            json!(name)
        };
    }
    if let Some(update) = params.metadata("metadata") {
        update.apply(&mut coupon["metadata"]);
    }
    let after = coupon.clone();
    Ok(Answer {
        events: updated("coupon.updated", &before, &after, request),
        body: after,
    })
}

/// `DELETE /v1/coupons/{id}`: `coupon.deleted` (the coupon as it was).
pub(super) fn delete(
    state: &mut State,
    id: &str,
    request: &EventRequest,
) -> Result<Answer, ApiError> {
    let coupon = state
        .coupons
        .remove(id)
        .ok_or_else(|| ApiError::no_such("coupon", id, "id"))?;
    state.deleted_coupons.insert(id.to_owned(), coupon.clone());
    Ok(Answer {
        body: json!({"id": id, "object": "coupon", "deleted": true}),
        events: vec![PendingEvent::new("coupon.deleted", &coupon, request)],
    })
}

/// The coupon `id`, deleted or not (a discount keeps working after its coupon is deleted).
pub(super) fn any<'a>(state: &'a State, id: &str) -> Option<&'a Value> {
    state
        .coupons
        .get(id)
        .or_else(|| state.deleted_coupons.get(id))
}

/// The coupon `id` if it can be redeemed now: it exists, is not past `redeem_by` and has
/// redemptions left. `param` names the parameter in the error.
pub(super) fn redeemable(state: &State, id: &str, param: &str) -> Result<Value, ApiError> {
    let coupon = state
        .coupons
        .get(id)
        .ok_or_else(|| ApiError::no_such("coupon", id, param))?;
    let expired = coupon["redeem_by"]
        .as_i64()
        .is_some_and(|by| by <= state.now());
    let used_up = coupon["max_redemptions"]
        .as_i64()
        .is_some_and(|max| coupon["times_redeemed"].as_i64().unwrap_or(0) >= max);
    if expired || used_up || coupon["valid"] == false {
        return Err(ApiError::invalid(
            format!("Coupon expired: {id}"),
            Some(param),
        ));
    }
    Ok(coupon.clone())
}

/// Counts a redemption of coupon `id` (and of promotion code `promotion_code`): a coupon
/// whose redemptions are used up is no longer `valid`.
pub(super) fn redeemed(state: &mut State, id: &str, promotion_code: Option<&str>) {
    if let Some(coupon) = state.coupons.get_mut(id) {
        let times = coupon["times_redeemed"].as_i64().unwrap_or(0) + 1;
        coupon["times_redeemed"] = json!(times);
        if coupon["max_redemptions"]
            .as_i64()
            .is_some_and(|max| times >= max)
        {
            coupon["valid"] = json!(false);
        }
    }
    if let Some(code) = promotion_code.and_then(|id| state.promotion_codes.get_mut(id)) {
        let times = code["times_redeemed"].as_i64().unwrap_or(0) + 1;
        code["times_redeemed"] = json!(times);
    }
}

/// See [`super::FakeStripe::create_coupon_in_dashboard`].
pub(super) fn create_in_dashboard(
    state: &mut State,
    params: &[(&str, &str)],
) -> Result<(String, Vec<PendingEvent>), ApiError> {
    let request = super::customers::dashboard_request(state);
    let form = form_of(params);
    let answer = create(state, &form, &request)?;
    let id = answer.body["id"].as_str().unwrap_or_default().to_owned();
    Ok((id, answer.events))
}

pub(super) fn form_of(params: &[(&str, &str)]) -> Form {
    let mut encoded = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        encoded.append_pair(k, v);
    }
    Form::parse(encoded.finish().as_bytes())
}

/// `type` with `previous_attributes`, if anything changed.
pub(super) fn updated(
    type_: &'static str,
    before: &Value,
    after: &Value,
    request: &EventRequest,
) -> Vec<PendingEvent> {
    previous_attributes(before, after)
        .map(|previous| {
            let mut event = PendingEvent::new(type_, after, request);
            event.previous_attributes = Some(previous);
            event
        })
        .into_iter()
        .collect()
}
