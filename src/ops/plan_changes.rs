//! Plan changes (cancel, uncancel, quantity): recorded through [`crate::changes`], carried
//! out by the outbox, waited for up to the context's wait like an attach.

use super::{Ctx, Error, Requested, Result};
use crate::changes::{self, Change};
use crate::domain::{CustomerId, IdempotencyKey, PlanId};
use crate::pending;
use crate::store::customers;
use crate::store::plan_changes;
use crate::views::PlanChangeView;

/// Which plan of which customer, what to change, and the request's idempotency key.
#[derive(Debug, Clone)]
pub(crate) struct ChangeRequest {
    pub customer_id: CustomerId,
    pub plan_id: PlanId,
    pub change: Change,
    pub idempotency_key: Option<IdempotencyKey>,
}

/// Records a plan change for `actor` and waits for it.
pub(crate) async fn request(
    ctx: &Ctx,
    request: &ChangeRequest,
    actor: &str,
) -> Result<Requested<PlanChangeView>> {
    if !ctx.stripe_enabled {
        return Err(Error::StripeNotConfigured);
    }
    let customer_id = request.customer_id.as_str();
    let recorded = changes::Request {
        customer_id,
        plan_id: request.plan_id.as_str(),
        change: request.change.clone(),
        actor,
        idempotency_key: request.idempotency_key.as_ref().map(IdempotencyKey::as_str),
    };
    let (change, duplicate) = changes::request(&ctx.pool, &ctx.catalog, &recorded).await?;
    let change = pending::wait(&ctx.pool, change, ctx.wait).await?;
    let pending = change.state == "pending";
    Ok(Requested {
        view: PlanChangeView {
            duplicate: Some(duplicate),
            ..PlanChangeView::new(change, customer_id.to_owned())
        },
        duplicate,
        pending,
    })
}

/// A plan change by its id (`GET /v1/plan_changes/{id}`).
pub(crate) async fn get(ctx: &Ctx, id: &str) -> Result<PlanChangeView> {
    let mut conn = ctx.pool.acquire().await?;
    let change = plan_changes::get(&mut conn, id)
        .await?
        .ok_or_else(|| Error::NotFound {
            code: "plan_change_not_found",
            what: format!("plan change {id}"),
        })?;
    let customer = customers::by_pk(&mut conn, change.customer_pk).await?;
    let customer_id = customer.and_then(|c| c.id).unwrap_or_default();
    Ok(PlanChangeView::new(change, customer_id))
}
