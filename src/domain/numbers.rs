//! Numbers with bounds, and the small closed sets a request names by word.

use std::fmt;
use std::str::FromStr;

use super::Refused;

/// The largest usage amount (`value` of `/v1/track`, `required` of `/v1/check`, a balance
/// edit's `amount`): a trillion units, far beyond any real use, and small enough that sums
/// of many of them never wrap.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;

/// The most units (seats) of one plan: far above any real count, and within Stripe's and
/// Postgres' `integer`.
pub const MAX_QUANTITY: i64 = 1_000_000;

/// A whole number's schema, from `min` to `max`.
fn integer_schema(min: i64, max: i64) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Int64,
        )))
        .minimum(Some(min))
        .maximum(Some(max))
        .into()
}

impl utoipa::PartialSchema for Amount {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        integer_schema(0, MAX_AMOUNT)
    }
}

impl utoipa::ToSchema for Amount {}

impl utoipa::PartialSchema for Quantity {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        integer_schema(1, MAX_QUANTITY)
    }
}

impl utoipa::ToSchema for Quantity {}

impl utoipa::PartialSchema for BalanceOp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["grant", "set", "deduct"]))
            .into()
    }
}

impl utoipa::ToSchema for BalanceOp {}

fn whole(value: &str) -> Result<i64, Refused> {
    value
        .trim()
        .parse::<i64>()
        .map_err(|_| Refused("must be a whole number".to_owned()))
}

/// A usage amount: 0 to [`MAX_AMOUNT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Amount(i64);

impl Amount {
    pub const ONE: Self = Self(1);

    pub fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for Amount {
    type Error = Refused;
    fn try_from(value: i64) -> Result<Self, Refused> {
        if !(0..=MAX_AMOUNT).contains(&value) {
            return Err(Refused(format!("must be between 0 and {MAX_AMOUNT}")));
        }
        Ok(Self(value))
    }
}

impl From<Amount> for i64 {
    fn from(amount: Amount) -> i64 {
        amount.0
    }
}

impl FromStr for Amount {
    type Err = Refused;
    fn from_str(value: &str) -> Result<Self, Refused> {
        whole(value)?.try_into()
    }
}

/// A plan's quantity: 1 to [`MAX_QUANTITY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Quantity(i32);

impl Quantity {
    pub const ONE: Self = Self(1);

    pub fn get(self) -> i32 {
        self.0
    }
}

impl TryFrom<i64> for Quantity {
    type Error = Refused;
    fn try_from(value: i64) -> Result<Self, Refused> {
        if !(1..=MAX_QUANTITY).contains(&value) {
            return Err(Refused(format!("must be between 1 and {MAX_QUANTITY}")));
        }
        Ok(Self(i32::try_from(value).expect("bounded above")))
    }
}

impl From<Quantity> for i64 {
    fn from(quantity: Quantity) -> i64 {
        i64::from(quantity.0)
    }
}

impl FromStr for Quantity {
    type Err = Refused;
    fn from_str(value: &str) -> Result<Self, Refused> {
        whole(value)?.try_into()
    }
}

/// A page's size: 1 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(i64);

impl Limit {
    /// A page by default.
    pub const DEFAULT: Self = Self(20);
    const MAX: i64 = 100;

    pub fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for Limit {
    type Error = Refused;
    fn try_from(value: i64) -> Result<Self, Refused> {
        if !(1..=Self::MAX).contains(&value) {
            return Err(Refused("must be 1 to 100".to_owned()));
        }
        Ok(Self(value))
    }
}

impl FromStr for Limit {
    type Err = Refused;
    fn from_str(value: &str) -> Result<Self, Refused> {
        value
            .parse::<i64>()
            .map_err(|_| Refused("must be 1 to 100".to_owned()))?
            .try_into()
    }
}

/// What a balance edit does: add to the balance, set it, or take from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum BalanceOp {
    Grant,
    Set,
    Deduct,
}

impl BalanceOp {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grant => "grant",
            Self::Set => "set",
            Self::Deduct => "deduct",
        }
    }
}

impl FromStr for BalanceOp {
    type Err = Refused;
    fn from_str(value: &str) -> Result<Self, Refused> {
        match value {
            "grant" => Ok(Self::Grant),
            "set" => Ok(Self::Set),
            "deduct" => Ok(Self::Deduct),
            _ => Err(Refused("must be grant, set or deduct".to_owned())),
        }
    }
}

impl TryFrom<String> for BalanceOp {
    type Error = Refused;
    fn try_from(value: String) -> Result<Self, Refused> {
        value.parse()
    }
}

impl From<BalanceOp> for &'static str {
    fn from(op: BalanceOp) -> Self {
        op.as_str()
    }
}

impl fmt::Display for BalanceOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_bounded_both_ways() {
        assert!(Amount::try_from(0).is_ok());
        assert!(Amount::try_from(MAX_AMOUNT).is_ok());
        assert!(Amount::try_from(-1).is_err());
        assert!(Amount::try_from(MAX_AMOUNT + 1).is_err());
        assert!(Amount::try_from(i64::MIN).is_err());
        assert_eq!(
            "-3".parse::<Amount>().unwrap_err().0,
            "must be between 0 and 1000000000000"
        );
        assert_eq!(
            "x".parse::<Amount>().unwrap_err().0,
            "must be a whole number"
        );
    }

    #[test]
    fn quantities_and_limits_are_bounded() {
        assert_eq!("3".parse::<Quantity>().unwrap().get(), 3);
        for bad in ["0", "1000001", "-1"] {
            assert_eq!(
                bad.parse::<Quantity>().unwrap_err().0,
                "must be between 1 and 1000000",
                "{bad}"
            );
        }
        assert!("100".parse::<Limit>().is_ok());
        assert!("0".parse::<Limit>().is_err());
        assert!("101".parse::<Limit>().is_err());
    }

    #[test]
    fn balance_ops_are_words() {
        assert_eq!("set".parse::<BalanceOp>().unwrap(), BalanceOp::Set);
        assert!("Set".parse::<BalanceOp>().is_err());
        let op: BalanceOp = serde_json::from_str("\"deduct\"").unwrap();
        assert_eq!(serde_json::to_string(&op).unwrap(), "\"deduct\"");
    }
}
