//! A reward (or a promotion code) for a customer's live subscription, recorded as a grant
//! ([`crate::rewards`]) and carried out by the outbox; waited for like an attach.

use super::{Ctx, Error, Requested, Result, find};
use crate::domain::{CustomerId, IdempotencyKey, PlanId, RewardId};
use crate::pending;
use crate::rewards::{self, Asked, GrantRequest};
use crate::store::reward_grants;
use crate::views::GrantView;

/// What `POST /v1/customers/{id}/rewards` asks for.
#[derive(Debug, Clone)]
pub(crate) struct GiveReward {
    pub reward: Option<RewardId>,
    pub promotion_code: Option<String>,
    /// The plan whose subscription gets it, when the customer has several.
    pub plan_id: Option<PlanId>,
    pub idempotency_key: Option<IdempotencyKey>,
}

pub(crate) async fn give(
    ctx: &Ctx,
    customer_id: &CustomerId,
    give: &GiveReward,
    actor: &str,
) -> Result<Requested<GrantView>> {
    let reward = give.reward.as_ref().map(RewardId::as_str);
    let asked = Asked::from_fields(reward, give.promotion_code.as_deref())?
        .ok_or_else(|| Error::invalid("reward", "is required (or `promotion_code`)"))?;
    if !ctx.stripe_enabled {
        return Err(Error::StripeNotConfigured);
    }
    let customer_id = customer_id.as_str();
    let request = GrantRequest {
        customer_id,
        plan_id: give.plan_id.as_ref().map(PlanId::as_str),
        asked,
        actor,
        idempotency_key: give.idempotency_key.as_ref().map(IdempotencyKey::as_str),
    };
    let api = ctx.stripe_api.as_ref();
    let (grant, duplicate) = rewards::grant(&ctx.pool, &ctx.catalog, api, &request).await?;
    let grant = pending::wait(&ctx.pool, grant, ctx.wait).await?;
    let pending = grant.state == "pending";
    Ok(Requested {
        view: GrantView {
            duplicate: Some(duplicate),
            ..GrantView::new(grant, customer_id.to_owned())
        },
        duplicate,
        pending,
    })
}

/// A customer's grant by its id.
pub(crate) async fn get(ctx: &Ctx, customer_id: &CustomerId, grant_id: &str) -> Result<GrantView> {
    let mut conn = ctx.pool.acquire().await?;
    let customer = find(&mut conn, customer_id.as_str()).await?;
    let grant = reward_grants::get(&mut conn, grant_id)
        .await?
        .filter(|g| g.customer_pk == customer.pk)
        .ok_or_else(|| Error::NotFound {
            code: "reward_grant_not_found",
            what: format!("reward grant {grant_id} of customer {customer_id}"),
        })?;
    Ok(GrantView::new(grant, customer_id.to_string()))
}
