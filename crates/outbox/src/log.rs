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

/// A dead letter: a queue row that ran out of tries (an event, or an outbound job).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DeadLetter {
    /// The queue row's key: the event id for events, the job's key otherwise.
    pub job_key: String,
    pub kind: String,
    /// The event's type, for events.
    pub event_type: Option<String>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub enqueued_at: DateTime<Utc>,
}

/// The dead letters, newest first (read from the queue, which keeps them until retried).
pub async fn dead_letters(pool: &PgPool, limit: i64) -> Result<Vec<DeadLetter>, sqlx::Error> {
    sqlx::query_as(
        "SELECT j.job_key, j.kind, e.type AS event_type, j.attempts,
                coalesce(j.last_error, e.last_error) AS last_error, j.enqueued_at
         FROM jobs j LEFT JOIN events e ON e.id = j.job_key AND j.kind = $1
         WHERE j.state = 'dead'
         ORDER BY j.enqueued_at DESC, j.id DESC LIMIT $2",
    )
    .bind(crate::EVENT_JOB)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// The events of one subject (a Stripe customer), newest first: those still in the queue
/// (pending, retrying or dead) and those among the newest `recent` the log received. The log
/// has no index by subject (every webhook would pay for it), so older finished events are
/// not looked for.
pub async fn of_subject(
    pool: &PgPool,
    subject: &str,
    recent: i64,
    limit: i64,
) -> Result<Vec<EventRecord>, sqlx::Error> {
    sqlx::query_as(select_events!(
        "WHERE e.id IN (
             SELECT q.job_key FROM jobs q JOIN events s ON s.id = q.job_key
             WHERE q.kind = 'stripe_event' AND s.customer_id = $1 -- EVENT_JOB
             UNION ALL
             SELECT n.id FROM (SELECT id, customer_id FROM events
                               ORDER BY received_at DESC LIMIT $2) n
             WHERE n.customer_id = $1)
         ORDER BY e.received_at DESC, e.id LIMIT $3"
    ))
    .bind(subject)
    .bind(recent)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Events received and applied in one minute.
#[derive(Debug, Clone, Copy, Serialize, sqlx::FromRow)]
pub struct MinuteCounts {
    pub minute: DateTime<Utc>,
    pub received: i64,
    pub applied: i64,
}

/// Received and applied events per minute over the last `minutes` minutes (oldest first,
/// every minute present, the current one last). Applied counts the events whose
/// application finished in the minute among those received in the window and the same
/// span before it: an event that waited longer than that is not counted (the oldest
/// pending age shows such a backlog). Bounded by `timeout`: at a high event rate the count
/// could take long, and a chart is not worth a slow page (the caller shows none).
pub async fn per_minute(
    pool: &PgPool,
    minutes: i32,
    timeout: std::time::Duration,
) -> Result<Vec<MinuteCounts>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT set_config('statement_timeout', $1, true)")
        .bind(format!("{}ms", timeout.as_millis()))
        .execute(&mut *tx)
        .await?;
    let rows = sqlx::query_as(
        "WITH bounds AS (
             SELECT date_trunc('minute', now()) - make_interval(mins => $1 - 1) AS since),
         recent AS (
             SELECT received_at, finished_at, state FROM events, bounds
             WHERE received_at >= since - make_interval(mins => $1)),
         received AS (
             SELECT date_trunc('minute', received_at) AS minute, count(*) AS n
             FROM recent, bounds WHERE received_at >= since GROUP BY 1),
         applied AS (
             SELECT date_trunc('minute', finished_at) AS minute, count(*) AS n
             FROM recent, bounds WHERE state = 'applied' AND finished_at >= since GROUP BY 1)
         SELECT m.minute, coalesce(r.n, 0) AS received, coalesce(a.n, 0) AS applied
         FROM bounds,
              generate_series(since, date_trunc('minute', now()), interval '1 minute') AS m(minute)
         LEFT JOIN received r ON r.minute = m.minute
         LEFT JOIN applied a ON a.minute = m.minute
         ORDER BY m.minute",
    )
    .bind(minutes)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows)
}
