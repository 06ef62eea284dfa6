//! `POST /v1/attach` and `GET /v1/attach/{id}`: a durable pending attach, carried out by the
//! outbox; the POST waits briefly for the first outcome so a caller usually gets the checkout
//! URL (or the active plan) in one call. A `reward` or `promotion_code` is checked first (a
//! code is looked up in Stripe: [`crate::rewards`]) and carried by the attach.

use hyper::StatusCode;
use serde::Deserialize;
use sqlx::PgConnection;

use super::AppState;
use super::error::{ApiError, HttpResponse, json};
use super::{entities, input};
use crate::jobs::ExecuteAttach;
use crate::pending;
use crate::rewards::{self, Asked};
use crate::store::attaches::{self, Attach};
use crate::store::reward_grants::{self, Offer};
use crate::store::{customers, plans, trials};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateAttach {
    pub(crate) customer_id: String,
    pub(crate) plan_id: String,
    pub(crate) success_url: String,
    pub(crate) cancel_url: String,
    /// Units of the plan (seats), 1 by default.
    #[serde(default = "one")]
    pub(crate) quantity: i64,
    /// Whether an upgrade prorates (Stripe's default) or is billed from the next period.
    #[serde(default = "yes")]
    pub(crate) prorate: bool,
    /// A catalog reward to redeem on the subscription (or its Checkout Session).
    #[serde(default)]
    pub(crate) reward: Option<String>,
    /// A promotion code the customer typed (instead of `reward`).
    #[serde(default)]
    pub(crate) promotion_code: Option<String>,
    /// The Checkout Session lets the customer type a promotion code (without the above).
    #[serde(default)]
    pub(crate) allow_promotion_codes: bool,
    /// The customer's entity that holds the plan (its own subscription), instead of the
    /// customer.
    #[serde(default)]
    pub(crate) entity_id: Option<String>,
}

pub(crate) fn one() -> i64 {
    1
}

pub(crate) fn yes() -> bool {
    true
}

pub(super) async fn create(state: &AppState, body: CreateAttach) -> Result<HttpResponse, ApiError> {
    let (status, answer) = start(state, body).await?;
    Ok(json(status, &answer))
}

/// `POST /v1/attach`'s status and answer (the API's and the console's).
pub(crate) async fn start(
    state: &AppState,
    body: CreateAttach,
) -> Result<(StatusCode, serde_json::Value), ApiError> {
    let entity_id = body.entity_id.clone();
    let (status, mut answer) = start_for(state, body).await?;
    answer["entity_id"] = entity_id.into();
    Ok((status, answer))
}

/// [`start`] for the customer or, with `entity_id`, the entity (whose plans are kept under
/// its holder: [`entities::holding`]).
async fn start_for(
    state: &AppState,
    body: CreateAttach,
) -> Result<(StatusCode, serde_json::Value), ApiError> {
    if !state.stripe_enabled {
        return Err(ApiError::StripeNotConfigured);
    }
    if state.catalog.plan(&body.plan_id).is_none() {
        return Err(ApiError::NotFound {
            code: "plan_not_found",
            what: format!("plan {}", body.plan_id),
        });
    }
    for (field, url) in [
        ("success_url", &body.success_url),
        ("cancel_url", &body.cancel_url),
    ] {
        if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 2048 {
            return Err(ApiError::invalid(field, "must be an http(s) URL"));
        }
    }
    let quantity = input::quantity("quantity", body.quantity)?;
    if let Some(entity_id) = &body.entity_id {
        input::id("entity_id", entity_id)?;
    }
    let offer = match offer(state, &body).await? {
        Ok(offer) => offer,
        Err(answer) => return Ok((StatusCode::OK, answer)),
    };
    let mut tx = state.pool.begin().await?;
    // Locking the customer serialises attaches of one customer: the checks below and the
    // insert see every earlier attach (the unique index on attaches in flight is the
    // backstop), and a concurrent delete either waits or has won (404).
    let customer = customers::lock_by_id(&mut tx, &body.customer_id)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            code: "customer_not_found",
            what: format!("customer {}", body.customer_id),
        })?;
    // The job runs in the customer's order, also for an entity (one Stripe customer).
    let payer_pk = customer.pk;
    let customer = entities::holding(&mut tx, customer, body.entity_id.as_deref()).await?;
    if let Some(open) = attaches::in_flight(&mut tx, customer.pk, &body.plan_id).await? {
        let offer = reward_grants::attach_offer(&mut tx, &open.id).await?;
        tx.commit().await?;
        return Ok((StatusCode::OK, duplicate(&open, &body.customer_id, &offer)));
    }
    if let Some(held) = plans::held(&mut tx, customer.pk, &body.plan_id).await? {
        let last = attaches::latest_done(&mut tx, customer.pk, &body.plan_id).await?;
        tx.commit().await?;
        return Ok((StatusCode::OK, already_held(&body, &held, last)));
    }
    let id = attaches::new_id(&mut tx).await?;
    let new = attaches::NewAttach {
        customer_pk: customer.pk,
        plan_id: &body.plan_id,
        success_url: Some(&body.success_url),
        cancel_url: Some(&body.cancel_url),
        quantity,
        prorate: body.prorate,
    };
    let attach = attaches::create(&mut tx, &id, &new)
        .await?
        .ok_or_else(|| ApiError::Conflict {
            code: "attach_in_flight",
            message: "an attach of this plan is in flight for the customer; retry".to_owned(),
        })?;
    let attach = give_trial(state, &mut tx, &customer, attach).await?;
    reward_grants::set_attach_offer(&mut tx, &attach.id, &offer).await?;
    let job = ExecuteAttach {
        attach_id: attach.id.clone(),
        customer_pk: payer_pk,
    };
    outbox::enqueue(&mut tx, &job).await?;
    tx.commit().await?;

    let attach = pending::wait(&state.pool, attach, state.attach_wait).await?;
    let status = if attach.state == "pending" {
        StatusCode::ACCEPTED
    } else {
        StatusCode::CREATED
    };
    let mut answer = view(&attach, &body.customer_id, &offer);
    answer["duplicate"] = false.into();
    Ok((status, answer))
}

/// What the attach redeems, checked against the catalog and its plan; a promotion code is
/// then looked up in Stripe, unless the attach would be a duplicate (in flight, or the plan
/// held), which is answered (`Err`) instead, so a retried call whose code was used up since
/// still gets it.
async fn offer(
    state: &AppState,
    body: &CreateAttach,
) -> Result<Result<Offer, serde_json::Value>, ApiError> {
    let asked = Asked::from_fields(body.reward.as_deref(), body.promotion_code.as_deref())?;
    if asked.is_none() && !body.allow_promotion_codes {
        return Ok(Ok(Offer::default()));
    }
    let plan = state
        .catalog
        .plan(&body.plan_id)
        .ok_or_else(|| ApiError::NotFound {
            code: "plan_not_found",
            what: format!("plan {}", body.plan_id),
        })?;
    rewards::check(&state.catalog, asked, body.allow_promotion_codes, plan)?;
    let mut conn = state.pool.acquire().await?;
    let customer = customers::by_id(&mut conn, &body.customer_id)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            code: "customer_not_found",
            what: format!("customer {}", body.customer_id),
        })?;
    // (An entity's attach finds its duplicates under the entity's holder, in `start_for`.)
    if body.entity_id.is_none() {
        if let Some(open) = attaches::in_flight(&mut conn, customer.pk, &body.plan_id).await? {
            let offer = reward_grants::attach_offer(&mut conn, &open.id).await?;
            return Ok(Err(duplicate(&open, &body.customer_id, &offer)));
        }
        if let Some(held) = plans::held(&mut conn, customer.pk, &body.plan_id).await? {
            let last = attaches::latest_done(&mut conn, customer.pk, &body.plan_id).await?;
            return Ok(Err(already_held(body, &held, last)));
        }
    }
    drop(conn);
    let offer = rewards::offer(
        &state.catalog,
        state.stripe_api.as_ref(),
        asked,
        body.allow_promotion_codes,
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
    state: &AppState,
    tx: &mut PgConnection,
    customer: &customers::Customer,
    mut attach: Attach,
) -> Result<Attach, ApiError> {
    let Some(plan) = state.catalog.plan(&attach.plan_id) else {
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
fn duplicate(attach: &Attach, customer_id: &str, offer: &Offer) -> serde_json::Value {
    let mut answer = view(attach, customer_id, offer);
    answer["duplicate"] = true.into();
    answer
}

/// An attach of a plan the customer has already: nothing is created, in Stripe or here.
fn already_held(
    body: &CreateAttach,
    held: &plans::HeldPlan,
    last: Option<Attach>,
) -> serde_json::Value {
    let state = if held.status == "scheduled" {
        "scheduled"
    } else {
        "active"
    };
    serde_json::json!({
        "id": last.map(|a| a.id),
        "customer_id": body.customer_id,
        "plan_id": body.plan_id,
        "state": state,
        "plan_status": held.status,
        "stripe_subscription_id": held.stripe_subscription_id,
        "checkout_url": null,
        "error": null,
        "duplicate": true,
    })
}

pub(super) async fn get(state: &AppState, id: &str) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.acquire().await?;
    let attach = find(&mut conn, id).await?;
    let (customer_id, entity_id) = entities::owner_ids(&mut conn, attach.customer_pk).await?;
    let offer = reward_grants::attach_offer(&mut conn, &attach.id).await?;
    let mut answer = view(&attach, &customer_id, &offer);
    answer["entity_id"] = entity_id.into();
    Ok(json(StatusCode::OK, &answer))
}

async fn find(conn: &mut PgConnection, id: &str) -> Result<Attach, ApiError> {
    attaches::get(conn, id)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            code: "attach_not_found",
            what: format!("attach {id}"),
        })
}

fn view(attach: &Attach, customer_id: &str, offer: &Offer) -> serde_json::Value {
    let mut v = serde_json::to_value(attach).expect("attaches serialize");
    v["customer_id"] = customer_id.into();
    v["reward"] = offer.reward_id.clone().into();
    v["promotion_code"] = offer.promotion_code.clone().into();
    v["allow_promotion_codes"] = offer.allow_promotion_codes.into();
    v
}
