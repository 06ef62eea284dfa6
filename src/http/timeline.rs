//! `GET /v1/customers/{id}/timeline?limit=&cursor=`: what happened to a customer, newest
//! first (the `activity` rows the store's triggers write, [`crate::store::activity`]).

use chrono::DateTime;
use hyper::StatusCode;
use serde_json::{Value, json};

use super::AppState;
use super::customers::{DEFAULT_PAGE, find, page_limit, time};
use super::error::{ApiError, HttpResponse, json as respond};
use crate::store::activity;

pub(super) async fn get(
    state: &AppState,
    id: &str,
    query: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    Ok(respond(
        StatusCode::OK,
        &page(&state.pool, id, query).await?,
    ))
}

/// The timeline's answer for a query string (the API's, the console's and the CLI's).
pub(crate) async fn page(
    pool: &sqlx::PgPool,
    id: &str,
    query: Option<&str>,
) -> Result<Value, ApiError> {
    let mut limit = DEFAULT_PAGE;
    let mut before = None;
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "limit" => limit = page_limit(&value)?,
            "cursor" => {
                before =
                    Some(parse_cursor(&value).ok_or_else(|| {
                        ApiError::invalid("cursor", "must be a next_cursor we gave")
                    })?);
            }
            _ => return Err(ApiError::invalid("query", "takes only limit and cursor")),
        }
    }
    let mut conn = pool.acquire().await?;
    let customer = find(&mut conn, id).await?;
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
    let data: Vec<Value> = entries
        .into_iter()
        .map(|e| {
            let mut entry = json!({"kind": e.kind, "at": time(Some(e.at)), "source": e.source});
            if let (Value::Object(entry), Value::Object(detail)) = (&mut entry, e.detail) {
                for (key, value) in detail {
                    entry.entry(key).or_insert(value);
                }
            }
            entry
        })
        .collect();
    Ok(json!({"data": data, "next_cursor": next_cursor}))
}

/// The latest instant a cursor may name: 9999-12-31T23:59:59.999999Z. Postgres refuses
/// instants outside its own range (before 4713 BC), so a cursor is held to 1970..=9999.
const MAX_CURSOR_MICROS: i64 = 253_402_300_799_999_999;

/// `{micros}_{id}`, as `next_cursor` writes it.
fn parse_cursor(value: &str) -> Option<(chrono::DateTime<chrono::Utc>, i64)> {
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
