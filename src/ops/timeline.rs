//! What happened to a customer, newest first (the `activity` rows the store's triggers
//! write, [`crate::store::activity`]).

use chrono::{DateTime, Utc};

use super::{Ctx, Error, Result, find};
use crate::domain::{CustomerId, Limit};
use crate::store::activity;
use crate::views::{Page, TimelineEntry};

/// A page of the timeline: `limit` entries after `cursor` (a `next_cursor` we gave).
pub(crate) async fn page(
    ctx: &Ctx,
    id: &CustomerId,
    limit: Limit,
    cursor: Option<&str>,
) -> Result<Page<TimelineEntry>> {
    let before = cursor
        .map(|c| {
            parse_cursor(c).ok_or_else(|| Error::invalid("cursor", "must be a next_cursor we gave"))
        })
        .transpose()?;
    let limit = limit.get();
    let mut conn = ctx.pool.acquire().await?;
    let customer = find(&mut conn, id.as_str()).await?;
    let mut entries = activity::page(&mut conn, customer.pk, before, limit + 1).await?;
    let more = entries.len() as i64 > limit;
    entries.truncate(limit as usize);
    let next_cursor = more
        .then(|| {
            entries
                .last()
                .map(|e| format!("{}_{}", e.at.timestamp_micros(), e.id))
        })
        .flatten();
    Ok(Page {
        data: entries.into_iter().map(TimelineEntry::from).collect(),
        next_cursor,
    })
}

/// The latest instant a cursor may name: 9999-12-31T23:59:59.999999Z. Postgres refuses
/// instants outside its own range (before 4713 BC), so a cursor is held to 1970..=9999.
const MAX_CURSOR_MICROS: i64 = 253_402_300_799_999_999;

/// `{micros}_{id}`, as `next_cursor` writes it.
fn parse_cursor(value: &str) -> Option<(DateTime<Utc>, i64)> {
    let (micros, id) = value.split_once('_')?;
    let micros: i64 = micros.parse().ok()?;
    if !(0..=MAX_CURSOR_MICROS).contains(&micros) {
        return None;
    }
    let at = DateTime::from_timestamp_micros(micros)?;
    Some((at, id.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_outside_what_we_give_are_refused() {
        assert!(parse_cursor("1795000000000000_7").is_some());
        assert!(parse_cursor("-1000000000000000000_1").is_none());
        assert!(parse_cursor("253402300800000000_1").is_none());
        assert!(parse_cursor("1_x").is_none());
    }
}
