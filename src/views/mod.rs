//! The typed answers of [`crate::ops`]: `Serialize` structs that the API writes as JSON,
//! the console renders as HTML and the CLI prints as text, so the three show the same
//! thing. Built from store rows (and the catalog) by pure functions here; nothing in this
//! module reads the database.

mod balance;
mod customer;
mod entity;
mod invoice;
mod plan;
mod request;
mod timeline;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use utoipa::ToSchema;

pub(crate) use balance::{BalanceEdited, BalanceView, Checked, Tracked, UsageBucket, UsageView};
pub(crate) use customer::{CustomerDeleted, CustomerView, EventView, ListedCustomer};
pub(crate) use entity::{EntityAnswer, EntityDeleted, EntityList, EntityView};
pub(crate) use invoice::{
    DiscountView, InvoiceDetail, InvoiceDiscount, InvoiceLine, InvoiceSummary, PaymentDue,
};
pub(crate) use plan::PlanView;
pub(crate) use request::{AttachAnswer, AttachView, GrantView, HeldAttach, PlanChangeView};
pub(crate) use timeline::TimelineEntry;

/// A time as the API has always written it (Postgres' JSON form): seconds, then as many
/// fractional digits as it has (up to microseconds), and `+00:00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Time(pub DateTime<Utc>);

impl Time {
    pub(crate) fn of(at: Option<DateTime<Utc>>) -> Option<Self> {
        at.map(Self)
    }
}

impl std::fmt::Display for Time {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = self.0;
        write!(f, "{}", at.format("%Y-%m-%dT%H:%M:%S"))?;
        let micros = at.timestamp_subsec_micros();
        if micros > 0 {
            let fraction = format!("{micros:06}");
            write!(f, ".{}", fraction.trim_end_matches('0'))?;
        }
        f.write_str("+00:00")
    }
}

impl utoipa::PartialSchema for Time {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some(
                "RFC 3339, UTC, written `+00:00` with as many fractional digits as it has",
            ))
            .into()
    }
}

impl ToSchema for Time {}

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A page of a list, newest first: `next_cursor` until the last page.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_as_postgres_writes_them() {
        let at = |s: &str| Some(Time(s.parse::<DateTime<Utc>>().unwrap()));
        let json = |t: Option<Time>| serde_json::to_value(t).unwrap();
        assert_eq!(
            json(at("2026-12-18T11:06:40Z")),
            "2026-12-18T11:06:40+00:00"
        );
        assert_eq!(
            json(at("2027-01-01T04:08:09.464915Z")),
            "2027-01-01T04:08:09.464915+00:00"
        );
        assert_eq!(
            json(at("2027-01-01T04:08:09.4649Z")),
            "2027-01-01T04:08:09.4649+00:00"
        );
        assert_eq!(json(None), serde_json::Value::Null);
    }
}
