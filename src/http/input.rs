//! A check on whole `/v1` bodies, so that every value we pass on can be stored.
//!
//! Postgres refuses a NUL in `text` and a `\u0000` in `jsonb`; a refused statement used to
//! surface as a 500. [`storable`] walks a whole JSON body once and refuses any string, key or
//! value, holding a NUL, naming its path. Fields are parsed into [`crate::domain`] types by
//! each handler, each refusal a 400 that names the field.

use serde_json::Value;

use crate::web::ApiError;

/// The body as `T`, whose fields are [`crate::domain`] types: a value one of them refuses
/// is a 400 naming the field (`` `customer_id` must be 1-255 printable characters ``), as
/// the API has always worded it; any other mismatch (a missing field, a wrong type) is
/// `invalid_request` with serde's words.
pub(super) fn typed<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let field = error.path().to_string();
        let message = error.inner().to_string();
        if crate::domain::is_refusal(&message) {
            ApiError::invalid(&field, &message)
        } else {
            ApiError::InvalidJson(message)
        }
    })
}

/// Refuses a NUL anywhere in the strings (keys and values, at any depth) of a JSON body.
pub(super) fn storable(value: &Value) -> Result<(), ApiError> {
    let mut path = String::new();
    walk(value, &mut path)
}

fn walk(value: &Value, path: &mut String) -> Result<(), ApiError> {
    match value {
        Value::String(s) if s.contains('\0') => Err(nul(path)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| descend(path, &format!("[{i}]"), |path| walk(item, path))),
        Value::Object(map) => map.iter().try_for_each(|(key, item)| {
            let step = if path.is_empty() {
                key.replace('\0', "\\u0000")
            } else {
                format!(".{}", key.replace('\0', "\\u0000"))
            };
            descend(path, &step, |path| {
                if key.contains('\0') {
                    return Err(nul(path));
                }
                walk(item, path)
            })
        }),
        _ => Ok(()),
    }
}

/// Runs `f` with `step` appended to `path`, then restores `path`.
fn descend(
    path: &mut String,
    step: &str,
    f: impl FnOnce(&mut String) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    let len = path.len();
    path.push_str(step);
    let result = f(path);
    path.truncate(len);
    result
}

fn nul(path: &str) -> ApiError {
    let field = if path.is_empty() { "(body)" } else { path };
    ApiError::invalid(field, crate::domain::NUL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused_field(value: &Value) -> Option<String> {
        match storable(value) {
            Ok(()) => None,
            Err(ApiError::Ops(crate::ops::Error::Invalid { field, .. })) => Some(field),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_nul_is_found_at_any_depth_and_named_by_its_path() {
        assert_eq!(
            refused_field(&json!({"name": "a\u{0}"})).as_deref(),
            Some("name")
        );
        assert_eq!(
            refused_field(&json!({"metadata": {"a": {"b": "x\u{0}y"}}})).as_deref(),
            Some("metadata.a.b")
        );
        assert_eq!(
            refused_field(&json!({"metadata": {"list": [1, "ok", "\u{0}"]}})).as_deref(),
            Some("metadata.list[2]")
        );
        assert_eq!(
            refused_field(&json!({"metadata": {"k\u{0}": 1}})).as_deref(),
            Some("metadata.k\\u0000")
        );
        assert_eq!(refused_field(&json!("\u{0}")).as_deref(), Some("(body)"));
        assert_eq!(
            refused_field(&json!({"metadata": {"ü": ["\u{1}", {"a": null}]}})),
            None
        );
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        customer_id: crate::domain::CustomerId,
        amount: crate::domain::Amount,
    }

    #[test]
    fn a_typed_body_refuses_a_value_in_its_fields_words() {
        let refusal = |value: Value| match typed::<Body>(value) {
            Ok(_) => panic!("accepted"),
            Err(error) => (error.status().as_u16(), error.to_string()),
        };
        assert_eq!(
            refusal(json!({"customer_id": "", "amount": 1})),
            (
                400,
                "`customer_id` must be 1-255 printable characters".to_owned()
            )
        );
        assert_eq!(
            refusal(json!({"customer_id": "u", "amount": -3})),
            (
                400,
                "`amount` must be between 0 and 1000000000000".to_owned()
            )
        );
        let (status, words) = refusal(json!({"customer_id": "u", "amount": "3"}));
        assert_eq!(status, 400);
        assert!(
            words.starts_with("the body is not valid JSON for this endpoint: invalid type"),
            "{words}"
        );
        assert!(typed::<Body>(json!({"customer_id": "u", "amount": 3})).is_ok());
    }
}
