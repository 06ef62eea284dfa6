//! Checks on what `/v1` callers send, so that every value we pass on can be stored.
//!
//! Postgres refuses a NUL in `text` and a `\u0000` in `jsonb`; a refused statement used to
//! surface as a 500. [`storable`] walks a whole JSON body once and refuses any string, key or
//! value, holding a NUL, naming its path. The other checks bound ids, texts, metadata and
//! amounts, each with a 400 that names the field.

use serde_json::Value;

use super::error::ApiError;

/// The largest `value` of `/v1/track` and `required` of `/v1/check`: a trillion units, far
/// beyond any real use, and small enough that sums of many of them never wrap.
pub(super) const MAX_AMOUNT: i64 = 1_000_000_000_000;

/// The longest id (customer, feature, idempotency key, path id), in characters.
pub(super) const MAX_ID_CHARS: usize = 255;

/// The largest `metadata` object, as compact JSON.
pub(super) const MAX_METADATA_BYTES: usize = 16 * 1024;

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
    ApiError::invalid(
        field,
        "contains a NUL character (\\u0000), which cannot be stored",
    )
}

/// An id: 1 to [`MAX_ID_CHARS`] characters, none of them a control character, and not `.`
/// or `..` (which a client's URL handling resolves as a path step: `entities/..` would name
/// the customer). Anything else printable is the caller's choice, `/` and spaces included.
pub(crate) fn id(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty()
        || value.chars().count() > MAX_ID_CHARS
        || value.chars().any(char::is_control)
    {
        return Err(ApiError::invalid(
            field,
            &format!("must be 1-{MAX_ID_CHARS} printable characters"),
        ));
    }
    if value == "." || value == ".." {
        return Err(ApiError::invalid(field, "must not be `.` or `..`"));
    }
    Ok(())
}

/// An optional free text of at most `max_chars` characters, without NUL (which Postgres
/// cannot store or compare).
pub(super) fn text(field: &str, value: Option<&str>, max_chars: usize) -> Result<(), ApiError> {
    if value.is_some_and(|v| v.chars().count() > max_chars) {
        return Err(ApiError::invalid(
            field,
            &format!("must be at most {max_chars} characters"),
        ));
    }
    if value.is_some_and(|v| v.contains('\0')) {
        return Err(nul(field));
    }
    Ok(())
}

/// `metadata`: a JSON object of at most [`MAX_METADATA_BYTES`].
pub(super) fn metadata(value: Option<&Value>) -> Result<(), ApiError> {
    let Some(value) = value else { return Ok(()) };
    if !value.is_object() {
        return Err(ApiError::invalid("metadata", "must be a JSON object"));
    }
    if value.to_string().len() > MAX_METADATA_BYTES {
        return Err(ApiError::invalid(
            "metadata",
            &format!("must be at most {MAX_METADATA_BYTES} bytes as JSON"),
        ));
    }
    Ok(())
}

/// A usage amount: 0 to [`MAX_AMOUNT`].
pub(super) fn amount(field: &str, value: i64) -> Result<(), ApiError> {
    if !(0..=MAX_AMOUNT).contains(&value) {
        return Err(ApiError::invalid(
            field,
            &format!("must be between 0 and {MAX_AMOUNT}"),
        ));
    }
    Ok(())
}

/// The most units (seats) of one plan: far above any real count, and within Stripe's and
/// Postgres' `integer`.
pub(crate) const MAX_QUANTITY: i64 = 1_000_000;

/// A plan's quantity: 1 to [`MAX_QUANTITY`].
pub(crate) fn quantity(field: &str, value: i64) -> Result<i32, ApiError> {
    if !(1..=MAX_QUANTITY).contains(&value) {
        return Err(ApiError::invalid(
            field,
            &format!("must be between 1 and {MAX_QUANTITY}"),
        ));
    }
    Ok(i32::try_from(value).expect("bounded above"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused_field(value: &Value) -> Option<String> {
        match storable(value) {
            Ok(()) => None,
            Err(ApiError::Invalid { field, .. }) => Some(field),
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

    #[test]
    fn ids_allow_printable_text_and_refuse_control_characters_and_length() {
        for ok in ["a", "a/b", "a b", "ü-1", &"x".repeat(MAX_ID_CHARS)] {
            assert!(id("id", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a\u{0}",
            "a\nb",
            "\u{7f}",
            &"x".repeat(MAX_ID_CHARS + 1),
        ] {
            assert!(id("id", bad).is_err(), "{bad:?}");
        }
        assert!(
            id("id", &"ü".repeat(MAX_ID_CHARS)).is_ok(),
            "characters, not bytes"
        );
    }

    #[test]
    fn amounts_are_bounded_both_ways() {
        assert!(amount("value", 0).is_ok());
        assert!(amount("value", MAX_AMOUNT).is_ok());
        assert!(amount("value", -1).is_err());
        assert!(amount("value", MAX_AMOUNT + 1).is_err());
        assert!(amount("value", i64::MIN).is_err());
    }
}
