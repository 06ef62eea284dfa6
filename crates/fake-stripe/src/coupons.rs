//! Coupons (`/v1/coupons`) and promotion codes (`/v1/promotion_codes`), shaped as API version
//! `2026-09-30.endive` renders them (`stripe_shared::Coupon`, `stripe_shared::PromotionCode`),
//! and the checks a redemption makes (see `discounts.rs`, which turns them into discounts).
//!
//! Coupons: `POST` (`id` optional, else an 8-character code; `percent_off`, or `amount_off`
//! with `currency`; `duration` `once` (the default), `forever` or `repeating` with
//! `duration_in_months`; `name`, `metadata`, `max_redemptions`, `redeem_by`), `GET`,
//! `POST /{id}` (`name`, `metadata`) and `DELETE` (`coupon.deleted`; discounts already made
//! from it go on, as Stripe's do; new redemptions get `No such coupon`). Events:
//! `coupon.created`, `coupon.updated`, `coupon.deleted`.
//!
//! Promotion codes, since API version `2025-09-30.clover`, name their coupon as
//! `promotion[coupon]` with `promotion[type]=coupon` (async-stripe's `CreatePromotionCode`
//! sends exactly that) and show it as `promotion: {coupon: "<id>", type: "coupon"}`, an id
//! (not expanded). The old top-level `coupon` parameter is refused as Stripe refuses an
//! unknown parameter. `code` (generated when absent) is unique among active codes regardless
//! of case; `GET /v1/promotion_codes` filters on `code` (case-insensitive), `active`,
//! `coupon` and `customer`. Events: `promotion_code.created`, `promotion_code.updated`.
//!
//! Error messages are the fake's wording where Stripe's exact text is not documented; the
//! `type`, `code` and `param` follow Stripe's conventions.

use serde_json::{Value, json};

use super::api::{self, Answer, ApiError, boolean, integer, required};
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

/// `POST /v1/promotion_codes`: `promotion_code.created`.
pub(super) fn create_promotion_code(
    state: &mut State,
    params: &Form,
    request: &EventRequest,
) -> Result<Answer, ApiError> {
    if params.has("coupon") {
        return Err(ApiError {
            code: Some("parameter_unknown"),
            ..ApiError::invalid(
                "Received unknown parameter: coupon. Since API version 2025-09-30.clover a \
                 promotion code names its coupon as promotion[coupon], with \
                 promotion[type]=coupon.",
                Some("coupon"),
            )
        });
    }
    let promotion = params.sub("promotion");
    match required(&promotion, "type").map_err(|_| ApiError::missing_param("promotion[type]"))? {
        "coupon" => {}
        other => {
            return Err(ApiError::invalid(
                format!("Invalid promotion[type]: must be coupon (got {other})"),
                Some("promotion[type]"),
            ));
        }
    }
    let coupon =
        required(&promotion, "coupon").map_err(|_| ApiError::missing_param("promotion[coupon]"))?;
    redeemable(state, coupon, "promotion[coupon]")?;
    let customer = params.get("customer").filter(|c| !c.is_empty());
    if let Some(customer) = customer
        && !state.customers.contains_key(customer)
    {
        return Err(ApiError::no_such("customer", customer, "customer"));
    }
    let active = boolean(params, "active")?.unwrap_or(true);
    let code = match params.get("code").filter(|c| !c.is_empty()) {
        Some(code) => {
            if !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(ApiError::invalid(
                    format!(
                        "Invalid code: {code}. Use letters (a-z, A-Z), digits (0-9) and dashes (-)."
                    ),
                    Some("code"),
                ));
            }
            code.to_owned()
        }
        None => state.code(),
    };
    if active && find_code(state, &code).is_some() {
        return Err(code_taken(&code));
    }
    let max_redemptions = integer(params, "max_redemptions")?;
    if max_redemptions.is_some_and(|m| m < 1) {
        return Err(ApiError::invalid(
            "Invalid max_redemptions: must be at least 1.",
            Some("max_redemptions"),
        ));
    }
    let restrictions = params.sub("restrictions");
    let id = state.id("promo");
    let promotion_code = json!({
        "id": id, "object": "promotion_code", "active": active, "code": code,
        "created": state.now(), "customer": customer, "customer_account": null,
        "expires_at": integer(params, "expires_at")?, "livemode": false,
        "max_redemptions": max_redemptions,
        "metadata": MetadataUpdate::new_object(params.metadata("metadata").as_ref()),
        "promotion": {"coupon": coupon, "type": "coupon"},
        "restrictions": {
            "currency_options": {},
            "first_time_transaction":
                boolean(&restrictions, "first_time_transaction")?.unwrap_or(false),
            "minimum_amount": integer(&restrictions, "minimum_amount")?,
            "minimum_amount_currency":
                restrictions.get("minimum_amount_currency").map(str::to_lowercase)
        },
        "times_redeemed": 0
    });
    state.promotion_codes.insert(id, promotion_code.clone());
    Ok(Answer {
        events: vec![PendingEvent::new(
            "promotion_code.created",
            &promotion_code,
            request,
        )],
        body: promotion_code,
    })
}

/// `GET /v1/promotion_codes`: newest first, filtered on `code` (regardless of case), `active`,
/// `coupon` and `customer`.
pub(super) fn list_promotion_codes(state: &State, params: &Form) -> Result<Answer, ApiError> {
    let active = boolean(params, "active")?;
    let code = params.get("code").filter(|c| !c.is_empty());
    let coupon = params.get("coupon").filter(|c| !c.is_empty());
    let customer = params.get("customer").filter(|c| !c.is_empty());
    let all: Vec<&Value> = state.promotion_codes.values().collect();
    let keep = |p: &Value| {
        active.is_none_or(|a| p["active"] == a)
            && code.is_none_or(|c| {
                p["code"]
                    .as_str()
                    .is_some_and(|p| p.eq_ignore_ascii_case(c))
            })
            && coupon.is_none_or(|c| p["promotion"]["coupon"] == c)
            && customer.is_none_or(|c| p["customer"] == c)
    };
    api::page(&all, keep, params, "promotion_code", "/v1/promotion_codes")
}

/// `POST /v1/promotion_codes/{id}`: `active` and `metadata`; `promotion_code.updated` if
/// anything changed.
pub(super) fn update_promotion_code(
    state: &mut State,
    params: &Form,
    id: &str,
    request: &EventRequest,
) -> Result<Answer, ApiError> {
    let before = state
        .promotion_codes
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::no_such("promotion_code", id, "id"))?;
    let active = boolean(params, "active")?;
    let code = before["code"].as_str().unwrap_or_default();
    if active == Some(true)
        && before["active"] == false
        && find_code(state, code).is_some_and(|other| other != id)
    {
        return Err(code_taken(code));
    }
    let mut after = before.clone();
    if let Some(active) = active {
        after["active"] = json!(active);
    }
    if let Some(update) = params.metadata("metadata") {
        update.apply(&mut after["metadata"]);
    }
    state.promotion_codes.insert(id.to_owned(), after.clone());
    Ok(Answer {
        events: updated("promotion_code.updated", &before, &after, request),
        body: after,
    })
}

/// The id of the active promotion code whose code is `code`, regardless of case.
pub(super) fn find_code(state: &State, code: &str) -> Option<String> {
    state
        .promotion_codes
        .values()
        .find(|p| {
            p["active"] == true
                && p["code"]
                    .as_str()
                    .is_some_and(|c| c.eq_ignore_ascii_case(code))
        })
        .and_then(|p| p["id"].as_str().map(str::to_owned))
}

/// Promotion code `id` and its coupon, if `customer` can redeem it now: active, not expired,
/// redemptions left, for this customer (or any; a code for one customer is refused when the
/// customer is not known yet, as in a checkout that will make one), its coupon redeemable.
/// Its `restrictions` (`first_time_transaction`, `minimum_amount`) are kept but not checked.
pub(super) fn redeemable_code(
    state: &State,
    id: &str,
    customer: Option<&str>,
    param: &str,
) -> Result<(Value, Value), ApiError> {
    let code = state
        .promotion_codes
        .get(id)
        .ok_or_else(|| ApiError::no_such("promotion_code", id, param))?;
    let name = code["code"].as_str().unwrap_or(id);
    let refuse = |why: &str| {
        Err(ApiError::invalid(
            format!("Promotion code {name} {why}."),
            Some(param),
        ))
    };
    if code["active"] != true {
        return refuse("is not active");
    }
    if code["expires_at"]
        .as_i64()
        .is_some_and(|at| at <= state.now())
    {
        return refuse("has expired");
    }
    if code["max_redemptions"]
        .as_i64()
        .is_some_and(|max| code["times_redeemed"].as_i64().unwrap_or(0) >= max)
    {
        return refuse("has been redeemed its maximum number of times");
    }
    if let Some(only) = code["customer"].as_str()
        && customer != Some(only)
    {
        return refuse("cannot be redeemed by this customer");
    }
    let coupon_id = code["promotion"]["coupon"].as_str().unwrap_or_default();
    let coupon = redeemable(state, coupon_id, param)?;
    Ok((code.clone(), coupon))
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

/// See [`super::FakeStripe::create_promotion_code_in_dashboard`].
pub(super) fn create_code_in_dashboard(
    state: &mut State,
    coupon: &str,
    code: &str,
) -> Result<(String, Vec<PendingEvent>), ApiError> {
    let request = super::customers::dashboard_request(state);
    let form = form_of(&[
        ("promotion[type]", "coupon"),
        ("promotion[coupon]", coupon),
        ("code", code),
    ]);
    let answer = create_promotion_code(state, &form, &request)?;
    let id = answer.body["id"].as_str().unwrap_or_default().to_owned();
    Ok((id, answer.events))
}

fn form_of(params: &[(&str, &str)]) -> Form {
    let mut encoded = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        encoded.append_pair(k, v);
    }
    Form::parse(encoded.finish().as_bytes())
}

fn code_taken(code: &str) -> ApiError {
    ApiError {
        code: Some("resource_already_exists"),
        ..ApiError::invalid(
            format!("An active promotion code with code {code} already exists."),
            Some("code"),
        )
    }
}

/// `type` with `previous_attributes`, if anything changed.
fn updated(
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
