//! The Events API: `GET /v1/events` and `GET /v1/events/{id}` over the events the fake
//! generated (`State::events`, the same JSON as the webhooks), delivered or not.
//!
//! As Stripe: newest first, only the last 30 days (on the fake's clock), paged with `limit`,
//! `starting_after` and `ending_before` (see [`api::page`]), filtered by `created` (exact or
//! `created[gt|gte|lt|lte]`), `type` (exact, or with `*` wildcards: `customer.*`) or
//! `types[]` (up to 20 exact types; not both).

use serde_json::Value;

use super::api::{self, Answer, ApiError};
use super::form::Form;
use super::state::State;

/// How long Stripe keeps events listable.
pub(super) const RETENTION_SECONDS: i64 = 30 * 86_400;
const MAX_TYPES: usize = 20;

/// `GET /v1/events`.
pub(super) fn list(state: &State, params: &Form) -> Result<Answer, ApiError> {
    let created = CreatedFilter::from(params)?;
    let types = type_filter(params)?;
    let oldest = state.now() - RETENTION_SECONDS;
    let all: Vec<&Value> = state.events.iter().collect();
    let keep = |event: &Value| {
        let at = event["created"].as_i64().unwrap_or_default();
        let type_ = event["type"].as_str().unwrap_or_default();
        at >= oldest && created.matches(at) && types.matches(type_)
    };
    api::page(&all, keep, params, "event", "/v1/events")
}

/// `GET /v1/events/{id}`: 404 for an unknown event or one older than 30 days.
pub(super) fn retrieve(state: &State, id: &str) -> Result<Answer, ApiError> {
    let oldest = state.now() - RETENTION_SECONDS;
    state
        .events
        .iter()
        .find(|e| e["id"] == id)
        .filter(|e| e["created"].as_i64().unwrap_or_default() >= oldest)
        .map(|e| Answer::quiet(e.clone()))
        .ok_or_else(|| ApiError::no_such("event", id, "id"))
}

/// `created=N` or `created[gt]`, `[gte]`, `[lt]`, `[lte]`.
#[derive(Default)]
struct CreatedFilter {
    gt: Option<i64>,
    gte: Option<i64>,
    lt: Option<i64>,
    lte: Option<i64>,
}

impl CreatedFilter {
    fn from(params: &Form) -> Result<Self, ApiError> {
        let bound = |key: &str| api::integer(params, key);
        let exact = match params.get("created") {
            Some(v) if !v.is_empty() => bound("created")?,
            _ => None,
        };
        Ok(Self {
            gt: bound("created[gt]")?,
            gte: bound("created[gte]")?.or(exact),
            lt: bound("created[lt]")?,
            lte: bound("created[lte]")?.or(exact),
        })
    }

    fn matches(&self, at: i64) -> bool {
        self.gt.is_none_or(|b| at > b)
            && self.gte.is_none_or(|b| at >= b)
            && self.lt.is_none_or(|b| at < b)
            && self.lte.is_none_or(|b| at <= b)
    }
}

/// `type` (a pattern) or `types[]` (exact types).
enum TypeFilter<'a> {
    Any,
    Pattern(&'a str),
    OneOf(Vec<&'a str>),
}

impl TypeFilter<'_> {
    fn matches(&self, type_: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Pattern(pattern) => glob(pattern, type_),
            Self::OneOf(types) => types.contains(&type_),
        }
    }
}

fn type_filter(params: &Form) -> Result<TypeFilter<'_>, ApiError> {
    let types = params.values("types");
    match (
        params.get("type").filter(|t| !t.is_empty()),
        types.is_empty(),
    ) {
        (Some(_), false) => Err(ApiError::invalid(
            "You may only specify one of these parameters: type, types.",
            Some("types"),
        )),
        (Some(pattern), true) => Ok(TypeFilter::Pattern(pattern)),
        (None, true) => Ok(TypeFilter::Any),
        (None, false) if types.len() > MAX_TYPES => Err(ApiError::invalid(
            format!(
                "Invalid array: types must have at most {MAX_TYPES} elements (got {}).",
                types.len()
            ),
            Some("types"),
        )),
        (None, false) => Ok(TypeFilter::OneOf(types)),
    }
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => text.strip_prefix(head).is_some_and(|tail| {
            tail.char_indices()
                .map(|(i, _)| i)
                .chain([tail.len()])
                .any(|i| glob(rest, &tail[i..]))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn wildcards_match_any_run_of_characters() {
        assert!(glob("customer.*", "customer.created"));
        assert!(glob("customer.*", "customer.subscription.deleted"));
        assert!(!glob("customer.*", "customer"));
        assert!(!glob("customer.*", "invoice.paid"));
        assert!(glob("*.paid", "invoice.paid"));
        assert!(glob("*", "anything"));
        assert!(glob("invoice.paid", "invoice.paid"));
        assert!(!glob("invoice.paid", "invoice.paid.x"));
        assert!(glob("customer.*.deleted", "customer.subscription.deleted"));
        assert!(!glob("customer.*.deleted", "customer.deleted"));
    }
}
