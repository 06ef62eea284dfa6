//! A check on whole `/v1` bodies, so that every value we pass on can be stored.
//!
//! Postgres refuses a NUL in `text` and a `\u0000` in `jsonb`; a refused statement used to
//! surface as a 500. [`storable`] walks a whole JSON body once and refuses any string, key or
//! value, holding a NUL, naming its path. Fields are parsed into [`crate::domain`] types by
//! each handler, each refusal a 400 that names the field.

use serde_json::Value;

use crate::web::ApiError;

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
}
