//! The `/v1` endpoints: routing, Stripe's error bodies and shared parameter helpers (and
//! list paging, [`page`]). The endpoints themselves are in `customers`, `catalog`,
//! `subscriptions`, `cancellation`, `checkout`, `invoices`, `coupons`, `promotion_codes`,
//! `events` and `endpoints`; PaymentIntents can only be retrieved.
//!
//! Handlers run with the state locked and return the response body plus the events the
//! change causes; the server queues those events before it lets go of the lock.

use std::collections::BTreeMap;

use serde_json::Value;

use super::form::Form;
use super::objects;
use super::state::State;
use super::webhooks::{EventRequest, PendingEvent};
use super::{
    cancellation, catalog, checkout, coupons, customers, endpoints, events, invoices,
    promotion_codes, subscriptions,
};

/// One API request, as the handlers see it.
pub(super) struct Call<'a> {
    pub method: &'a str,
    /// The path after `/v1/`, split on `/`.
    pub segments: &'a [&'a str],
    /// The form body of a POST, the query string of a GET.
    pub params: &'a Form,
    pub request: EventRequest,
}

/// A successful answer and what it set off.
pub(super) struct Answer {
    pub body: Value,
    pub events: Vec<PendingEvent>,
}

impl Answer {
    pub(super) fn quiet(body: Value) -> Self {
        Self {
            body,
            events: Vec::new(),
        }
    }
}

/// An error as Stripe reports it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ApiError {
    pub status: u16,
    pub type_: &'static str,
    pub code: Option<&'static str>,
    pub message: String,
    pub param: Option<String>,
    /// A card issuer's reason, on `card_error`s.
    pub decline_code: Option<&'static str>,
}

impl ApiError {
    pub(super) fn invalid(message: impl Into<String>, param: Option<&str>) -> Self {
        Self {
            status: 400,
            type_: "invalid_request_error",
            code: None,
            message: message.into(),
            param: param.map(str::to_owned),
            decline_code: None,
        }
    }

    /// 402 `card_error`: a charge the request needed did not go through.
    pub(super) fn card_error(
        code: &'static str,
        decline_code: Option<&'static str>,
        message: &str,
    ) -> Self {
        Self {
            status: 402,
            type_: "card_error",
            code: Some(code),
            decline_code,
            ..Self::invalid(message, None)
        }
    }

    pub(super) fn missing_param(param: &str) -> Self {
        Self {
            code: Some("parameter_missing"),
            ..Self::invalid(format!("Missing required param: {param}."), Some(param))
        }
    }

    /// `No such customer: 'cus_x'`: 404 for the object in the path, 400 for a parameter.
    pub(super) fn no_such(kind: &str, id: &str, param: &str) -> Self {
        Self {
            status: if param == "id" { 404 } else { 400 },
            code: Some("resource_missing"),
            ..Self::invalid(format!("No such {kind}: '{id}'"), Some(param))
        }
    }

    pub(super) fn no_route(method: &str, path: &str) -> Self {
        Self {
            status: 404,
            ..Self::invalid(
                format!(
                    "Unrecognized request URL ({method}: {path}). Please see \
                     https://stripe.com/docs or we can help at https://support.stripe.com/."
                ),
                None,
            )
        }
    }

    pub(super) fn unauthorized() -> Self {
        Self {
            status: 401,
            ..Self::invalid(
                "You did not provide an API key. You need to provide your API key in the \
                 Authorization header, using Bearer auth (e.g. 'Authorization: Bearer \
                 YOUR_SECRET_KEY').",
                None,
            )
        }
    }

    /// A `Fault::Status500`: sent with `Stripe-Should-Retry: true`.
    pub(super) fn injected_500() -> Self {
        Self {
            status: 500,
            type_: "api_error",
            ..Self::invalid("An unknown error occurred (injected by the fake).", None)
        }
    }

    pub(super) fn injected_400() -> Self {
        Self::invalid("This request was refused (injected by the fake).", None)
    }

    pub(super) fn rate_limited() -> Self {
        Self {
            status: 429,
            code: Some("rate_limit"),
            ..Self::invalid(
                "Request rate limit exceeded. Learn more about rate limits here \
                 https://stripe.com/docs/rate-limits.",
                None,
            )
        }
    }

    pub(super) fn idempotency_conflict(key: &str) -> Self {
        Self {
            type_: "idempotency_error",
            ..Self::invalid(
                format!(
                    "Keys for idempotent requests can only be used with the same parameters \
                     they were first used with. Try using a key other than '{key}' if you \
                     meant to execute a different request."
                ),
                None,
            )
        }
    }

    pub(super) fn body(&self, request_id: &str) -> Value {
        let mut body = objects::error(
            self.type_,
            self.code,
            &self.message,
            self.param.as_deref(),
            request_id,
        );
        if let Some(decline_code) = self.decline_code {
            body["error"]["decline_code"] = decline_code.into();
        }
        body
    }
}

pub(super) fn route(
    state: &mut State,
    call: &Call<'_>,
    base_url: &str,
) -> Result<Answer, ApiError> {
    match (call.method, call.segments) {
        ("POST", ["customers"]) => customers::create(state, call.params, &call.request),
        ("GET", ["customers", id]) => customers::retrieve(state, id),
        ("POST", ["customers", id]) => customers::update(state, call.params, id, &call.request),
        ("DELETE", ["customers", id]) => customers::delete_api(state, id, &call.request),
        ("POST", ["products"]) => catalog::create_product(state, call.params),
        ("GET", ["products", id]) => retrieve(&state.products, "product", id),
        ("POST", ["prices"]) => catalog::create_price(state, call.params),
        ("GET", ["prices", id]) => retrieve(&state.prices, "price", id),
        ("POST", ["subscriptions"]) => subscriptions::create(state, call),
        ("GET", ["subscriptions"]) => subscriptions::list(state, call.params),
        ("GET", ["subscriptions", id]) => subscriptions::retrieve(state, call.params, id),
        ("POST", ["subscriptions", id]) => subscriptions::update(state, call, id),
        ("DELETE", ["subscriptions", id]) => cancellation::cancel(state, call, id),
        ("POST", ["subscriptions", id, "resume"]) => subscriptions::resume(state, call, id),
        ("POST", ["coupons"]) => coupons::create(state, call.params, &call.request),
        ("GET", ["coupons", id]) => coupons::retrieve(state, id),
        ("POST", ["coupons", id]) => coupons::update(state, call.params, id, &call.request),
        ("DELETE", ["coupons", id]) => coupons::delete(state, id, &call.request),
        ("POST", ["promotion_codes"]) => {
            promotion_codes::create_promotion_code(state, call.params, &call.request)
        }
        ("GET", ["promotion_codes"]) => promotion_codes::list_promotion_codes(state, call.params),
        ("GET", ["promotion_codes", id]) => retrieve(&state.promotion_codes, "promotion_code", id),
        ("POST", ["promotion_codes", id]) => {
            promotion_codes::update_promotion_code(state, call.params, id, &call.request)
        }
        ("POST", ["checkout", "sessions"]) => checkout::create(state, call.params, base_url),
        ("GET", ["checkout", "sessions", id]) => retrieve(&state.sessions, "checkout.session", id),
        ("POST", ["invoiceitems"]) => invoices::create_item(state, call.params),
        ("GET", ["invoiceitems", id]) => retrieve(&state.invoice_items, "invoiceitem", id),
        ("GET", ["invoices", id]) => invoices::retrieve(state, call.params, id),
        ("GET", ["events"]) => events::list(state, call.params),
        ("GET", ["events", id]) => events::retrieve(state, id),
        ("POST", ["webhook_endpoints"]) => endpoints::create(state, call.params),
        ("GET", ["webhook_endpoints"]) => endpoints::list(state, call.params),
        ("GET", ["webhook_endpoints", id]) => {
            retrieve(&state.webhook_endpoints, "webhook endpoint", id)
        }
        ("POST", ["webhook_endpoints", id]) => endpoints::update(state, call.params, id),
        ("DELETE", ["webhook_endpoints", id]) => endpoints::delete(state, id),
        ("GET", ["payment_intents", id]) => retrieve(&state.payment_intents, "payment_intent", id),
        _ => Err(ApiError::no_route(
            call.method,
            &format!("/v1/{}", call.segments.join("/")),
        )),
    }
}

/// The object `id` from `map`, or Stripe's 404.
pub(super) fn retrieve(
    map: &BTreeMap<String, Value>,
    kind: &str,
    id: &str,
) -> Result<Answer, ApiError> {
    let object = map
        .get(id)
        .ok_or_else(|| ApiError::no_such(kind, id, "id"))?;
    Ok(Answer::quiet(object.clone()))
}

/// One page of a list as Stripe pages it: newest first, `limit` (1-100, default 10),
/// `starting_after` (older than that object) or `ending_before` (newer; the `limit` closest
/// to it), `has_more` in the direction paged. `all` is every object of the kind in creation
/// order (cursors are looked up there, so an object filtered out still pages); `keep` says
/// which are listed.
pub(super) fn page(
    all: &[&Value],
    keep: impl Fn(&Value) -> bool,
    params: &Form,
    kind: &str,
    url: &str,
) -> Result<Answer, ApiError> {
    let limit = match integer(params, "limit")? {
        None => 10,
        Some(n) if n < 1 => {
            return Err(ApiError::invalid(
                "This value must be greater than or equal to 1.",
                Some("limit"),
            ));
        }
        Some(n) if n > 100 => {
            return Err(ApiError::invalid(
                "This value must be less than or equal to 100.",
                Some("limit"),
            ));
        }
        Some(n) => n as usize,
    };
    let cursor = |param: &str| match params.get(param).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(id) => all
            .iter()
            .position(|o| o["id"] == id)
            .map(Some)
            .ok_or_else(|| ApiError::no_such(kind, id, param)),
    };
    let (after, before) = (cursor("starting_after")?, cursor("ending_before")?);
    if after.is_some() && before.is_some() {
        return Err(ApiError::invalid(
            "You may only specify one of these parameters: ending_before, starting_after.",
            None,
        ));
    }
    let kept = all.iter().enumerate().filter(|(_, o)| keep(o));
    let (data, has_more) = match before {
        Some(before) => {
            let newer: Vec<&Value> = kept.filter(|(i, _)| *i > before).map(|(_, o)| *o).collect();
            let has_more = newer.len() > limit;
            let mut data: Vec<Value> = newer.into_iter().take(limit).cloned().collect();
            data.reverse();
            (data, has_more)
        }
        None => {
            let older: Vec<&Value> = kept
                .rev()
                .filter(|(i, _)| after.is_none_or(|after| *i < after))
                .map(|(_, o)| *o)
                .collect();
            let has_more = older.len() > limit;
            (older.into_iter().take(limit).cloned().collect(), has_more)
        }
    };
    Ok(Answer::quiet(objects::list(url, data, has_more)))
}

/// A required parameter.
pub(super) fn required<'a>(params: &'a Form, key: &str) -> Result<&'a str, ApiError> {
    params
        .get(key)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::missing_param(key))
}

pub(super) fn integer(params: &Form, key: &str) -> Result<Option<i64>, ApiError> {
    params
        .get_i64(key)
        .map_err(|message| ApiError::invalid(message, Some(key)))
}

/// A boolean parameter: `true` or `false`, anything else refused as Stripe does (where
/// [`Form::get_bool`] would quietly read it as `false`).
pub(super) fn boolean(params: &Form, key: &str) -> Result<Option<bool>, ApiError> {
    match params.get(key) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => Err(ApiError::invalid(
            format!("Invalid boolean: {other}"),
            Some(key),
        )),
    }
}
