//! Reads of the event log and the queue's counts, for an application's API, CLI and metrics.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

/// One stored event with its processing state.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct EventRecord {
    pub id: String,
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    pub event_type: String,
    pub created: i64,
    pub livemode: bool,
    pub api_version: Option<String>,
    pub account: Option<String>,
    pub object_id: Option<String>,
    /// The subject (see [`crate::NewEvent::subject_id`]).
    pub customer_id: Option<String>,
    pub received_at: DateTime<Utc>,
    pub state: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// The live state: an event whose job holds a lease right now is `processing`.
macro_rules! select_events {
    ($($tail:literal),*) => { concat!(r#"
    SELECT e.id, e.type, e.created, e.livemode, e.api_version, e.account, e.object_id,
           e.customer_id, e.received_at,
           CASE WHEN j.locked_until > now() THEN 'processing' ELSE e.state END AS state,
           e.attempts, e.last_error, e.finished_at
    FROM events e
    LEFT JOIN jobs j ON j.job_key = e.id AND j.kind = 'stripe_event' -- EVENT_JOB
"#, $($tail),*) };
}

pub async fn get(pool: &PgPool, id: &str) -> Result<Option<EventRecord>, sqlx::Error> {
    sqlx::query_as(select_events!("WHERE e.id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Which of `ids` the log holds already.
pub async fn existing(pool: &PgPool, ids: &[&str]) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM events WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(pool)
        .await
}

/// The `created` of the newest event the log holds (of any state), if any.
pub async fn newest_created(pool: &PgPool) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT max(created) FROM events")
        .fetch_one(pool)
        .await
}

/// The payload exactly as it was appended.
pub async fn payload(pool: &PgPool, id: &str) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar("SELECT payload FROM events WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Filters for [`list`].
#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    pub state: Option<String>,
    pub event_type: Option<String>,
    pub limit: i64,
}

/// The newest events first.
pub async fn list(pool: &PgPool, filter: &ListFilter) -> Result<Vec<EventRecord>, sqlx::Error> {
    sqlx::query_as(select_events!(
        "WHERE ($1::text IS NULL OR e.state = $1) AND ($2::text IS NULL OR e.type = $2)
         ORDER BY e.received_at DESC, e.id LIMIT $3"
    ))
    .bind(filter.state.as_deref())
    .bind(filter.event_type.as_deref())
    .bind(filter.limit)
    .fetch_all(pool)
    .await
}

/// The log and the queue at a glance.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Events per state in the log.
    pub events: std::collections::BTreeMap<String, i64>,
    #[serde(flatten)]
    pub queue: QueueCounts,
}

/// The job queue at a glance: one aggregate over `jobs`, cheap enough for every scrape.
#[derive(Debug, Clone, Copy, Serialize, sqlx::FromRow)]
pub struct QueueCounts {
    /// Queue rows waiting to run (due or backing off).
    pub pending: i64,
    /// Queue rows under a live lease (outbound jobs running now).
    pub in_flight: i64,
    /// Dead letters (events and outbound jobs).
    pub dead: i64,
    /// Age of the oldest pending queue row, in seconds.
    pub oldest_pending_secs: Option<f64>,
}

pub async fn status(pool: &PgPool) -> Result<Status, sqlx::Error> {
    let events: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, count(*) FROM events GROUP BY state ORDER BY state")
            .fetch_all(pool)
            .await?;
    Ok(Status {
        events: events.into_iter().collect(),
        queue: queue_counts(pool).await?,
    })
}

/// Pending, in flight, dead and the oldest pending age.
pub async fn queue_counts(pool: &PgPool) -> Result<QueueCounts, sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*) FILTER (WHERE state = 'pending') AS pending,
                count(*) FILTER (WHERE state = 'pending' AND locked_until > now()) AS in_flight,
                count(*) FILTER (WHERE state = 'dead') AS dead,
                extract(epoch FROM now() - min(enqueued_at) FILTER (WHERE state = 'pending'))::float8
                    AS oldest_pending_secs
         FROM jobs",
    )
    .fetch_one(pool)
    .await
}
