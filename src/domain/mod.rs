//! Values parsed once, at the front door, into types that cannot hold an invalid value:
//! ids ([`CustomerId`], [`FeatureId`], [`EntityId`], [`PlanId`], [`IdempotencyKey`]...),
//! [`Amount`], [`Quantity`], [`BalanceOp`], bounded texts. Each has `FromStr` (clap's
//! `value_parser` and the console's forms use it) and `Deserialize` through it; a refusal
//! is the field's name and the words the API has always used (`` `customer_id` must be
//! 1-255 printable characters ``).

mod ids;
mod numbers;

pub use ids::check_id;
pub use ids::{CustomerId, EntityId, FeatureId, IdempotencyKey, PlanId, RewardId};
pub use numbers::{Amount, BalanceOp, Limit, Quantity};

/// A value refused: the field it came in, and why (`` `{field}` {message} ``).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {message}")]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

/// Why a text is not a value of its type (a `FromStr` error: the field is the caller's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

impl Refused {
    pub fn field(self, field: &'static str) -> Invalid {
        Invalid {
            field,
            message: self.0,
        }
    }
}

/// Whether a serde error's words are a domain type's refusal (they all begin `must `),
/// rather than serde's own (`missing field`, `invalid type`...).
pub fn is_refusal(message: &str) -> bool {
    message.starts_with("must ")
}

/// Parses `value` for `field`: `parse::<CustomerId>("customer_id", s)?`.
pub fn parse<T>(field: &'static str, value: &str) -> Result<T, Invalid>
where
    T: std::str::FromStr<Err = Refused>,
{
    value.parse().map_err(|e: Refused| e.field(field))
}

/// Parses an optional value for `field`.
pub fn parse_opt<T>(field: &'static str, value: Option<&str>) -> Result<Option<T>, Invalid>
where
    T: std::str::FromStr<Err = Refused>,
{
    value.map(|v| parse(field, v)).transpose()
}

/// An optional free text of at most `max_chars` characters, without NUL (which Postgres
/// cannot store or compare).
pub fn text(field: &'static str, value: Option<&str>, max_chars: usize) -> Result<(), Invalid> {
    if value.is_some_and(|v| v.chars().count() > max_chars) {
        return Err(Invalid {
            field,
            message: format!("must be at most {max_chars} characters"),
        });
    }
    if value.is_some_and(|v| v.contains('\0')) {
        return Err(Invalid {
            field,
            message: NUL.to_owned(),
        });
    }
    Ok(())
}

/// The words of a NUL refusal.
pub const NUL: &str = "contains a NUL character (\\u0000), which cannot be stored";

/// The longest name, fingerprint or search, in characters.
pub const MAX_TEXT_CHARS: usize = 255;
