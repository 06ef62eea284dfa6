//! `GET /healthz` (the process answers) and `GET /readyz` (Postgres reachable, migrated).

use hyper::StatusCode;

use super::AppState;
use crate::web::{HttpResponse, json};

pub(super) fn live() -> HttpResponse {
    json(StatusCode::OK, &serde_json::json!({ "status": "ok" }))
}

pub(super) async fn ready(state: &AppState) -> HttpResponse {
    let reason = match crate::db::migrations_applied(&state.ops.pool).await {
        Ok(true) => return json(StatusCode::OK, &serde_json::json!({ "status": "ready" })),
        Ok(false) => "migrations are pending",
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            "the database is unreachable"
        }
    };
    json(
        StatusCode::SERVICE_UNAVAILABLE,
        &serde_json::json!({ "error": { "code": "not_ready", "message": reason } }),
    )
}
