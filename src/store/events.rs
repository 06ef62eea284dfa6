//! Reads of the event log, for the API and the ops CLI.

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
    pub customer_id: Option<String>,
    pub received_at: DateTime<Utc>,
    pub state: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl EventRecord {
    /// The public shape of `GET /v1/events/{id}`.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "type": self.event_type,
            "created": self.created,
            "received_at": self.received_at,
            "state": self.state,
            "attempts": self.attempts,
            "last_error": self.last_error,
        })
    }
}

/// The live state: an event whose job holds a lease right now is `processing`.
macro_rules! select_events {
    ($($tail:literal),*) => { concat!(r#"
    SELECT e.id, e.type, e.created, e.livemode, e.api_version, e.account, e.object_id,
           e.customer_id, e.received_at,
           CASE WHEN j.locked_until > now() THEN 'processing' ELSE e.state END AS state,
           e.attempts, e.last_error, e.finished_at
    FROM events e
    LEFT JOIN jobs j ON j.job_key = e.id AND j.kind = 'stripe_event'
"#, $($tail),*) };
}

pub async fn get(pool: &PgPool, id: &str) -> Result<Option<EventRecord>, sqlx::Error> {
    sqlx::query_as(select_events!("WHERE e.id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// The raw body exactly as Stripe sent it.
pub async fn payload(pool: &PgPool, id: &str) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar("SELECT payload FROM events WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}
