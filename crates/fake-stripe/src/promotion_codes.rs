//! Promotion codes (`/v1/promotion_codes`), shaped as API version `2026-09-30.endive` renders
//! them (`stripe_shared::PromotionCode`), and the checks a redemption makes (see
//! `discounts.rs`, which turns them into discounts; their coupons are `coupons.rs`).
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
use super::coupons::{form_of, redeemable, updated};
use super::form::{Form, MetadataUpdate};
use super::state::State;
use super::webhooks::{EventRequest, PendingEvent};

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

fn code_taken(code: &str) -> ApiError {
    ApiError {
        code: Some("resource_already_exists"),
        ..ApiError::invalid(
            format!("An active promotion code with code {code} already exists."),
            Some("code"),
        )
    }
}
