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

/// `{micros}_{id}`, as `next_cursor` writes it.
fn parse_cursor(value: &str) -> Option<(chrono::DateTime<chrono::Utc>, i64)> {
    let (micros, id) = value.split_once('_')?;
    let at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    Some((at, id.parse().ok()?))
}
