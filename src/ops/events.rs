//! A Stripe event we received: its live state.

use super::{Ctx, Error, Result};
use crate::views::EventView;
use outbox::log as events;

pub(crate) async fn get(ctx: &Ctx, id: &str) -> Result<EventView> {
    let event = events::get(&ctx.pool, id)
        .await?
        .ok_or_else(|| Error::NotFound {
            code: "event_not_found",
            what: format!("event {id}"),
        })?;
    Ok(event.into())
}
