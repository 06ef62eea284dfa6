//! Ids: 1 to [`MAX_ID_CHARS`] characters, none of them a control character, and not `.` or
//! `..` (which a client's URL handling resolves as a path step: `entities/..` would name
//! the customer). Anything else printable is the caller's choice, `/` and spaces included.

use std::fmt;
use std::str::FromStr;

use super::Refused;

/// The longest id (customer, feature, idempotency key, path id), in characters.
pub const MAX_ID_CHARS: usize = 255;

/// Why `value` is not an id, if it is not.
fn check(value: &str) -> Result<(), Refused> {
    if value.is_empty()
        || value.chars().count() > MAX_ID_CHARS
        || value.chars().any(char::is_control)
    {
        return Err(Refused(format!(
            "must be 1-{MAX_ID_CHARS} printable characters"
        )));
    }
    if value == "." || value == ".." {
        return Err(Refused("must not be `.` or `..`".to_owned()));
    }
    Ok(())
}

/// Checks an id of no particular kind (a path segment) for `field`.
pub fn check_id(field: &'static str, value: &str) -> Result<(), super::Invalid> {
    check(value).map_err(|e| e.field(field))
}

/// An id's schema in the OpenAPI document.
fn id_schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_ID_CHARS))
        .description(Some(
            "Printable characters (no control character), not `.` or `..`",
        ))
        .into()
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = Refused;
            fn from_str(value: &str) -> Result<Self, Refused> {
                check(value)?;
                Ok(Self(value.to_owned()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = Refused;
            fn try_from(value: String) -> Result<Self, Refused> {
                check(&value)?;
                Ok(Self(value))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                id_schema()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// Our customer's id (the caller's user id).
    CustomerId
);
id_type!(
    /// A catalog feature's id.
    FeatureId
);
id_type!(
    /// A customer's entity (team, workspace).
    EntityId
);
id_type!(
    /// A catalog plan's id.
    PlanId
);
id_type!(
    /// A catalog reward's id.
    RewardId
);
id_type!(
    /// The key that makes a request apply once.
    IdempotencyKey
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_allow_printable_text_and_refuse_control_characters_and_length() {
        for ok in ["a", "a/b", "a b", "ü-1", &"x".repeat(MAX_ID_CHARS)] {
            assert!(ok.parse::<CustomerId>().is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a\u{0}",
            "a\nb",
            "\u{7f}",
            ".",
            "..",
            &"x".repeat(MAX_ID_CHARS + 1),
        ] {
            assert!(bad.parse::<CustomerId>().is_err(), "{bad:?}");
        }
        assert!(
            "ü".repeat(MAX_ID_CHARS).parse::<FeatureId>().is_ok(),
            "characters, not bytes"
        );
    }

    #[test]
    fn a_refusal_names_its_field_in_the_apis_words() {
        let refused = super::super::parse::<CustomerId>("customer_id", "").unwrap_err();
        assert_eq!(
            refused.to_string(),
            "`customer_id` must be 1-255 printable characters"
        );
        let refused = super::super::parse::<EntityId>("id", "..").unwrap_err();
        assert_eq!(refused.to_string(), "`id` must not be `.` or `..`");
    }

    #[test]
    fn json_bodies_deserialize_through_the_same_check() {
        let ok: CustomerId = serde_json::from_str("\"u 1\"").unwrap();
        assert_eq!(ok.as_str(), "u 1");
        let bad = serde_json::from_str::<CustomerId>("\"\"").unwrap_err();
        assert!(bad.to_string().contains("printable"), "{bad}");
        assert_eq!(serde_json::to_string(&ok).unwrap(), "\"u 1\"");
    }
}
