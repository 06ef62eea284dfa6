//! `GET /v1/events/{id}`: a Stripe event we received, and what happened to it.

use super::respond::ok;
use crate::ops::{self, Ctx};
use crate::views::EventView;
use crate::web::{ApiError, HttpResponse};

#[utoipa::path(get, path = "/v1/events/{id}", operation_id = "getEvent", tag = "events",
    params(("id" = String, Path, description = "The Stripe event's id (`evt_...`)")),
    responses(
        (status = 200, description = "The event's live state", body = EventView),
        (status = 404, description = "`event_not_found`", body = crate::web::error::ErrorBody),
    ))]
pub(super) async fn get(ctx: &Ctx, id: &str) -> Result<HttpResponse, ApiError> {
    Ok(ok(&ops::events::get(ctx, id).await?))
}
