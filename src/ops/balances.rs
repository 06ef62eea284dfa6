//! A customer's balances: check one (`allowed`), track usage once per key, edit one
//! (grant, set, deduct) until the feature's next reset. With `entity_id`, check and track
//! are the entity's (its own balance, else its customer's).

use super::{Ctx, Error, IDEMPOTENCY_ERROR, Result, entities, find, known_feature};
use crate::domain::{self, Amount, BalanceOp, CustomerId, EntityId, FeatureId, IdempotencyKey};
use crate::store::balances;
use crate::store::entities as store_entities;
use crate::views::{BalanceEdited, Checked, Tracked};

/// `POST /v1/check`: whether `required` units are there.
#[derive(Debug)]
pub(crate) struct Check {
    pub customer_id: CustomerId,
    pub feature_id: FeatureId,
    pub required: Amount,
    /// The entity's balance, else (without a grant of its own) the customer's.
    pub entity_id: Option<EntityId>,
}

/// `POST /v1/track`: usage to record.
#[derive(Debug)]
pub(crate) struct Track {
    pub customer_id: CustomerId,
    pub feature_id: FeatureId,
    pub value: Amount,
    pub idempotency_key: Option<IdempotencyKey>,
    /// The entity's balance, else (without a grant of its own) the customer's.
    pub entity_id: Option<EntityId>,
}

/// `POST /v1/balances`: an edit until the feature's next reset.
#[derive(Debug)]
pub(crate) struct Edit {
    pub customer_id: CustomerId,
    pub feature_id: FeatureId,
    pub op: BalanceOp,
    pub amount: Amount,
    pub reason: Option<String>,
    pub idempotency_key: Option<IdempotencyKey>,
}

/// The longest reason of a balance edit, in characters.
const MAX_REASON_CHARS: usize = 500;

pub(crate) async fn check(ctx: &Ctx, check: &Check) -> Result<Checked> {
    if let Some(entity_id) = &check.entity_id {
        return entity_check(ctx, check, entity_id).await;
    }
    let (customer_id, feature_id) = (check.customer_id.as_str(), check.feature_id.as_str());
    let mut tx = ctx.pool.begin().await?;
    let customer = find(&mut tx, customer_id).await?;
    known_feature(&ctx.catalog, feature_id)?;
    let balance = balances::current(&mut tx, customer.pk, feature_id).await?;
    tx.commit().await?;
    Ok(checked(check, None, None, balance.as_ref()))
}

/// The answer of a check against `balance` (none: nothing granted).
fn checked(
    check: &Check,
    entity_id: Option<&EntityId>,
    scope: Option<&'static str>,
    balance: Option<&balances::Balance>,
) -> Checked {
    let required = check.required.get();
    let (allowed, remaining, unlimited) = match balance {
        Some(b) => (b.allows(required), b.remaining(), b.unlimited),
        None => (false, 0, false),
    };
    Checked {
        customer_id: check.customer_id.to_string(),
        entity_id: entity_id.map(EntityId::to_string),
        feature_id: check.feature_id.to_string(),
        allowed,
        balance: remaining,
        unlimited,
        scope,
        // Granted only by a paused or unpaid plan: the balance is kept for its return.
        reason: balance
            .is_some_and(|b| b.suspended)
            .then_some("plan_suspended"),
    }
}

pub(crate) async fn track(ctx: &Ctx, track: &Track) -> Result<Tracked> {
    if let Some(entity_id) = &track.entity_id {
        return entity_track(ctx, track, entity_id).await;
    }
    let (customer_id, feature_id) = (track.customer_id.as_str(), track.feature_id.as_str());
    let mut tx = ctx.pool.begin().await?;
    let customer = find(&mut tx, customer_id).await?;
    known_feature(&ctx.catalog, feature_id)?;
    let key = track.idempotency_key.as_ref().map(IdempotencyKey::as_str);
    let (balance, duplicate) =
        balances::track(&mut tx, customer.pk, feature_id, track.value.get(), key).await?;
    tx.commit().await?;
    Ok(Tracked {
        customer_id: customer_id.to_owned(),
        entity_id: None,
        feature_id: feature_id.to_owned(),
        balance: balance.as_ref().map_or(0, balances::Balance::remaining),
        duplicate,
        scope: None,
    })
}

/// Grants, sets or deducts; `actor` is recorded as who made the edit.
pub(crate) async fn edit(ctx: &Ctx, edit: &Edit, actor: &str) -> Result<BalanceEdited> {
    domain::text("reason", edit.reason.as_deref(), MAX_REASON_CHARS)?;
    let (customer_id, feature_id) = (edit.customer_id.as_str(), edit.feature_id.as_str());
    let key = edit.idempotency_key.as_ref().map(IdempotencyKey::as_str);
    let mut tx = ctx.pool.begin().await?;
    let customer = find(&mut tx, customer_id).await?;
    known_feature(&ctx.catalog, feature_id)?;
    let op = match edit.op {
        BalanceOp::Grant => balances::EditOp::Grant,
        BalanceOp::Set => balances::EditOp::Set,
        BalanceOp::Deduct => balances::EditOp::Deduct,
    };
    let stored = balances::Edit {
        feature_id,
        op,
        amount: edit.amount.get(),
        reason: edit.reason.as_deref(),
        actor,
        idempotency_key: key,
    };
    let (balance, duplicate) = match balances::edit(&mut tx, customer.pk, &stored).await? {
        balances::Edited::Done { balance, duplicate } => (balance, duplicate),
        balances::Edited::NoBalance => {
            return Err(Error::NotFound {
                code: "balance_not_found",
                what: format!(
                    "a balance of {feature_id} for customer {customer_id} (no plan of theirs \
                     grants it)"
                ),
            });
        }
        balances::Edited::Unlimited => {
            return Err(Error::invalid(
                "feature_id",
                "the feature is unlimited for this customer: there is no balance to edit",
            ));
        }
        balances::Edited::KeyReused { differs } => {
            return Err(Error::Refused {
                code: IDEMPOTENCY_ERROR,
                message: format!(
                    "idempotency_key {} was used for another balance edit ({differs} differs): \
                     use a new key",
                    key.unwrap_or_default()
                ),
            });
        }
    };
    tx.commit().await?;
    Ok(BalanceEdited {
        customer_id: customer_id.to_owned(),
        feature_id: feature_id.to_owned(),
        balance: balance.remaining(),
        included: balance.included,
        adjustment: balance.adjustment,
        used: balance.used,
        next_reset_at: crate::views::Time::of(balance.next_reset_at),
        duplicate,
    })
}

/// A check with `entity_id`: the entity's balance of the feature, or the customer's when
/// no plan of the entity grants it (`scope` says which).
async fn entity_check(ctx: &Ctx, check: &Check, entity_id: &EntityId) -> Result<Checked> {
    let feature_id = check.feature_id.as_str();
    let mut tx = ctx.pool.begin().await?;
    let customer = find(&mut tx, check.customer_id.as_str()).await?;
    let entity = entities::live(&mut tx, &customer, entity_id.as_str()).await?;
    known_feature(&ctx.catalog, feature_id)?;
    let (scope, balance) = match balances::current(&mut tx, entity.holder_pk, feature_id).await? {
        Some(own) => ("entity", Some(own)),
        None => (
            "customer",
            balances::current(&mut tx, customer.pk, feature_id).await?,
        ),
    };
    tx.commit().await?;
    Ok(checked(
        check,
        Some(entity_id),
        Some(scope),
        balance.as_ref(),
    ))
}

/// A track with `entity_id`: on the entity's balance of the feature, or the customer's
/// when no plan of the entity grants it; once per `idempotency_key` either way (a retry
/// finds the key where the first call recorded it).
async fn entity_track(ctx: &Ctx, track: &Track, entity_id: &EntityId) -> Result<Tracked> {
    let feature_id = track.feature_id.as_str();
    let mut tx = ctx.pool.begin().await?;
    let customer = find(&mut tx, track.customer_id.as_str()).await?;
    let entity = entities::live(&mut tx, &customer, entity_id.as_str()).await?;
    known_feature(&ctx.catalog, feature_id)?;
    let pks = [entity.holder_pk, customer.pk];
    let key = track.idempotency_key.as_ref().map(IdempotencyKey::as_str);
    let recorded = match key {
        Some(key) => store_entities::usage_key_owner(&mut tx, &pks, key).await?,
        None => None,
    };
    let (pk, balance, duplicate) = match recorded {
        Some(pk) => (pk, balances::current(&mut tx, pk, feature_id).await?, true),
        None => {
            let own = balances::current(&mut tx, entity.holder_pk, feature_id).await?;
            let pk = if own.is_some() {
                entity.holder_pk
            } else {
                customer.pk
            };
            let value = track.value.get();
            let (balance, duplicate) = balances::track(&mut tx, pk, feature_id, value, key).await?;
            (pk, balance, duplicate)
        }
    };
    tx.commit().await?;
    let scope = if pk == entity.holder_pk {
        "entity"
    } else {
        "customer"
    };
    Ok(Tracked {
        customer_id: track.customer_id.to_string(),
        entity_id: Some(entity_id.to_string()),
        feature_id: feature_id.to_owned(),
        balance: balance.as_ref().map_or(0, balances::Balance::remaining),
        duplicate,
        scope: Some(scope),
    })
}
