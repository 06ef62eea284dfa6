//! Attaching a plan: a durable pending attach, carried out by the outbox; the caller waits
//! briefly for the first outcome so it usually gets the checkout URL (or the active plan)
//! in one call. A `reward` or `promotion_code` is checked first (a code is looked up in
//! Stripe: [`crate::rewards`]) and carried by the attach.

use sqlx::PgConnection;

use super::{Ctx, Error, Requested, Result, customer_not_found, entities, plan_not_found};
use crate::domain::{CustomerId, EntityId, PlanId, Quantity};
use crate::jobs::ExecuteAttach;
use crate::pending;
use crate::rewards::{self, Asked};
use crate::store::attaches::{self, Attach};
use crate::store::reward_grants::{self, Offer};
use crate::store::{customers, plans, trials};
use crate::views::{AttachAnswer, AttachView, HeldAttach};

/// What `POST /v1/attach` (and the console's attach form) asks for.
#[derive(Debug, Clone)]
pub(crate) struct NewAttach {
    pub customer_id: CustomerId,
    pub plan_id: PlanId,
    pub success_url: String,
    pub cancel_url: String,
    /// Units of the plan (seats).
    pub quantity: Quantity,
    /// Whether an upgrade prorates (Stripe's default) or is billed from the next period.
    pub prorate: bool,
    /// A catalog reward to redeem on the subscription (or its Checkout Session).
    pub reward: Option<String>,
    /// A promotion code the customer typed (instead of `reward`).
    pub promotion_code: Option<String>,
    /// The Checkout Session lets the customer type a promotion code (without the above).
    pub allow_promotion_codes: bool,
    /// The customer's entity that holds the plan (its own subscription), instead of the
    /// customer.
    pub entity_id: Option<EntityId>,
}

/// Starts an attach (or answers the one in flight, or the plan held), and waits for its
/// first outcome.
pub(crate) async fn start(ctx: &Ctx, new: &NewAttach) -> Result<Requested<AttachAnswer>> {
    let mut requested = start_for(ctx, new).await?;
    requested
        .view
        .set_entity(new.entity_id.as_ref().map(EntityId::to_string));
    Ok(requested)
}

/// [`start`] for the customer or, with `entity_id`, the entity (whose plans are kept under
/// its holder: [`entities::holding`]).
async fn start_for(ctx: &Ctx, new: &NewAttach) -> Result<Requested<AttachAnswer>> {
    if !ctx.stripe_enabled {
        return Err(Error::StripeNotConfigured);
    }
    let (customer_id, plan_id) = (new.customer_id.as_str(), new.plan_id.as_str());
    if ctx.catalog.plan(plan_id).is_none() {
        return Err(plan_not_found(plan_id));
    }
    for (field, url) in [
        ("success_url", &new.success_url),
        ("cancel_url", &new.cancel_url),
    ] {
        if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 2048 {
            return Err(Error::invalid(field, "must be an http(s) URL"));
        }
    }
    let offer = match offer(ctx, new).await? {
        Ok(offer) => offer,
        Err(answer) => return Ok(answered(answer)),
    };
    let mut tx = ctx.pool.begin().await?;
    // Locking the customer serialises attaches of one customer: the checks below and the
    // insert see every earlier attach (the unique index on attaches in flight is the
    // backstop), and a concurrent delete either waits or has won (404).
    let customer = customers::lock_by_id(&mut tx, customer_id)
        .await?
        .ok_or_else(|| customer_not_found(customer_id))?;
    // The job runs in the customer's order, also for an entity (one Stripe customer).
    let payer_pk = customer.pk;
    let customer = entities::holding(&mut tx, customer, new.entity_id.as_ref()).await?;
    if let Some(open) = attaches::in_flight(&mut tx, customer.pk, plan_id).await? {
        let offer = reward_grants::attach_offer(&mut tx, &open.id).await?;
        tx.commit().await?;
        return Ok(answered(duplicate(open, customer_id, &offer)));
    }
    if let Some(held) = plans::held(&mut tx, customer.pk, plan_id).await? {
        let last = attaches::latest_done(&mut tx, customer.pk, plan_id).await?;
        tx.commit().await?;
        return Ok(answered(already_held(new, &held, last)));
    }
    let id = attaches::new_id(&mut tx).await?;
    let stored = attaches::NewAttach {
        customer_pk: customer.pk,
        plan_id,
        success_url: Some(&new.success_url),
        cancel_url: Some(&new.cancel_url),
        quantity: new.quantity.get(),
        prorate: new.prorate,
    };
    let attach = attaches::create(&mut tx, &id, &stored)
        .await?
        .ok_or_else(|| Error::Conflict {
            code: "attach_in_flight",
            message: "an attach of this plan is in flight for the customer; retry".to_owned(),
        })?;
    let attach = give_trial(ctx, &mut tx, &customer, attach).await?;
    reward_grants::set_attach_offer(&mut tx, &attach.id, &offer).await?;
    let job = ExecuteAttach {
        attach_id: attach.id.clone(),
        customer_pk: payer_pk,
    };
    outbox::enqueue(&mut tx, &job).await?;
    tx.commit().await?;

    let attach = pending::wait(&ctx.pool, attach, ctx.wait).await?;
    let pending = attach.state == "pending";
    let mut view = AttachView::new(attach, customer_id, &offer);
    view.duplicate = Some(false);
    Ok(Requested {
        view: AttachAnswer::Attach(view),
        duplicate: false,
        pending,
    })
}

/// An answer that created nothing: the attach in flight, or the plan held.
fn answered(answer: AttachAnswer) -> Requested<AttachAnswer> {
    Requested {
        view: answer,
        duplicate: true,
        pending: false,
    }
}

/// What the attach redeems, checked against the catalog and its plan; a promotion code is
/// then looked up in Stripe, unless the attach would be a duplicate (in flight, or the plan
/// held), which is answered (`Err`) instead, so a retried call whose code was used up since
/// still gets it.
async fn offer(ctx: &Ctx, new: &NewAttach) -> Result<std::result::Result<Offer, AttachAnswer>> {
    let asked = Asked::from_fields(new.reward.as_deref(), new.promotion_code.as_deref())?;
    if asked.is_none() && !new.allow_promotion_codes {
        return Ok(Ok(Offer::default()));
    }
    let (customer_id, plan_id) = (new.customer_id.as_str(), new.plan_id.as_str());
    let plan = ctx
        .catalog
        .plan(plan_id)
        .ok_or_else(|| plan_not_found(plan_id))?;
    rewards::check(&ctx.catalog, asked, new.allow_promotion_codes, plan)?;
    let mut conn = ctx.pool.acquire().await?;
    let customer = customers::by_id(&mut conn, customer_id)
        .await?
        .ok_or_else(|| customer_not_found(customer_id))?;
    // (An entity's attach finds its duplicates under the entity's holder, in `start_for`.)
    if new.entity_id.is_none() {
        if let Some(open) = attaches::in_flight(&mut conn, customer.pk, plan_id).await? {
            let offer = reward_grants::attach_offer(&mut conn, &open.id).await?;
            return Ok(Err(duplicate(open, customer_id, &offer)));
        }
        if let Some(held) = plans::held(&mut conn, customer.pk, plan_id).await? {
            let last = attaches::latest_done(&mut conn, customer.pk, plan_id).await?;
            return Ok(Err(already_held(new, &held, last)));
        }
    }
    drop(conn);
    let offer = rewards::offer(
        &ctx.catalog,
        ctx.stripe_api.as_ref(),
        asked,
        new.allow_promotion_codes,
        plan,
        customer.stripe_id.as_deref(),
    )
    .await?;
    Ok(Ok(offer))
}

/// The plan's free trial, if it has one, the attach starts a subscription (not a change
/// within the group, which keeps the one there) and the customer (or its fingerprint) has
/// not had it.
async fn give_trial(
    ctx: &Ctx,
    tx: &mut PgConnection,
    customer: &customers::Customer,
    mut attach: Attach,
) -> Result<Attach> {
    let Some(plan) = ctx.catalog.plan(&attach.plan_id) else {
        return Ok(attach);
    };
    let Some(trial) = plan.free_trial else {
        return Ok(attach);
    };
    if let Some(group) = plan.group.as_deref().filter(|_| !plan.add_on)
        && plans::live_subscription_in_group(tx, customer.pk, group)
            .await?
            .is_some()
    {
        return Ok(attach);
    }
    let days = i32::try_from(trial.days).unwrap_or(i32::MAX);
    let fingerprint = customer.fingerprint.as_deref();
    if trials::claim(tx, customer.pk, fingerprint, &plan.id, &attach.id, days).await? {
        attaches::set_trial(tx, &attach.id, days).await?;
        attach.trial_days = Some(days);
    }
    Ok(attach)
}

/// A second attach of a plan in flight: the first one, as it stands.
fn duplicate(attach: Attach, customer_id: &str, offer: &Offer) -> AttachAnswer {
    let mut view = AttachView::new(attach, customer_id, offer);
    view.duplicate = Some(true);
    AttachAnswer::Attach(view)
}

/// An attach of a plan the customer has already: nothing is created, in Stripe or here.
fn already_held(new: &NewAttach, held: &plans::HeldPlan, last: Option<Attach>) -> AttachAnswer {
    let state = if held.status == "scheduled" {
        "scheduled"
    } else {
        "active"
    };
    AttachAnswer::Held(HeldAttach {
        id: last.map(|a| a.id),
        customer_id: new.customer_id.to_string(),
        plan_id: new.plan_id.to_string(),
        state,
        plan_status: held.status.clone(),
        stripe_subscription_id: held.stripe_subscription_id.clone(),
        checkout_url: None,
        error: None,
        duplicate: true,
        entity_id: None,
    })
}

/// An attach by its id (`GET /v1/attach/{id}`).
pub(crate) async fn get(ctx: &Ctx, id: &str) -> Result<AttachView> {
    let mut conn = ctx.pool.acquire().await?;
    let attach = attaches::get(&mut conn, id)
        .await?
        .ok_or_else(|| Error::NotFound {
            code: "attach_not_found",
            what: format!("attach {id}"),
        })?;
    let (customer_id, entity_id) = entities::owner_ids(&mut conn, attach.customer_pk).await?;
    let offer = reward_grants::attach_offer(&mut conn, &attach.id).await?;
    let mut view = AttachView::new(attach, &customer_id, &offer);
    view.entity_id = entity_id;
    Ok(view)
}
