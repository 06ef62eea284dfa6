//! A customer's entities (teams, workspaces), each using one unit of a feature of the
//! customer's while it lives; and the entity an attach is for (`entity_id`; check and
//! track with `entity_id` are in [`super::balances`]). An entity's plans and balances are kept under its holder
//! ([`crate::store::entities`]); without a grant of its own, an entity's check and track
//! use its customer's balance.

use sqlx::PgConnection;

use super::{Ctx, Error, Result, customer_not_found, feature_not_found, find};
use crate::catalog::{Catalog, FeatureKind};
use crate::domain::{self, CustomerId, EntityId, FeatureId, MAX_TEXT_CHARS};
use crate::store::customers::{self, Customer};
use crate::store::entities::{self, Entity};
use crate::store::{activity, balances, plans};
use crate::views::{
    BalanceView, EntityAnswer, EntityDeleted, EntityList, EntityView, PlanView, Time,
};

/// `POST /v1/customers/{id}/entities`.
#[derive(Debug)]
pub(crate) struct NewEntity {
    pub id: EntityId,
    pub name: Option<String>,
    /// The customer's feature one unit of which the entity uses (e.g. `seats`).
    pub feature_id: FeatureId,
}

/// Creates the entity, using one unit of `feature_id` of the customer's; `duplicate` when
/// it exists with the same fields; `feature_exhausted` when none is left
/// (`plan_suspended` when only a suspended plan grants it), `entity_exists` when the id is
/// taken with another name or feature. `Ok((created, answer))`.
pub(crate) async fn create(
    ctx: &Ctx,
    customer_id: &CustomerId,
    new: &NewEntity,
) -> Result<(bool, EntityAnswer)> {
    let customer_id = customer_id.as_str();
    domain::text("name", new.name.as_deref(), MAX_TEXT_CHARS)?;
    let feature = new.feature_id.as_str();
    match ctx.catalog.feature(feature).map(|f| f.kind) {
        None => return Err(feature_not_found(feature)),
        Some(FeatureKind::Boolean) => {
            return Err(Error::invalid(
                "feature_id",
                "must be a metered feature: an entity uses one unit of it",
            ));
        }
        Some(FeatureKind::Metered) => {}
    }
    let mut tx = ctx.pool.begin().await?;
    activity::set_source(&mut tx, "api", None).await?;
    // Locked: entities of one customer are created one at a time, each seeing the units the
    // others used (and a concurrent delete of the customer waits, or has won).
    let customer = customers::lock_by_id(&mut tx, customer_id)
        .await?
        .ok_or_else(|| customer_not_found(customer_id))?;
    if let Some(existing) = entities::live(&mut tx, customer.pk, new.id.as_str()).await? {
        if existing.name != new.name || existing.feature_id != feature {
            return Err(Error::Conflict {
                code: "entity_exists",
                message: format!(
                    "entity {} of customer {customer_id} exists with another name or feature_id",
                    new.id
                ),
            });
        }
        let answer = answer(&mut tx, &ctx.catalog, customer_id, &existing, Some(true)).await?;
        tx.commit().await?;
        return Ok((false, answer));
    }
    let left = balances::current(&mut tx, customer.pk, feature).await?;
    match &left {
        None => {
            return Err(exhausted(format!(
                "customer {customer_id} has no {feature}: no plan of theirs grants it"
            )));
        }
        Some(b) if b.suspended => {
            return Err(Error::Conflict {
                code: "plan_suspended",
                message: format!(
                    "customer {customer_id}'s {feature} are granted only by a suspended plan"
                ),
            });
        }
        Some(b) if !b.allows(1) => {
            return Err(exhausted(format!(
                "customer {customer_id} has no {feature} left ({} used of {})",
                b.used,
                b.included.saturating_add(b.adjustment)
            )));
        }
        Some(_) => {}
    }
    let name = new.name.as_deref();
    let entity = entities::create(&mut tx, customer.pk, new.id.as_str(), name, feature).await?;
    balances::track(&mut tx, customer.pk, feature, 1, None).await?;
    let answer = answer(&mut tx, &ctx.catalog, customer_id, &entity, Some(false)).await?;
    tx.commit().await?;
    Ok((true, answer))
}

/// The live entities, oldest first, with their plans and balances.
pub(crate) async fn list(ctx: &Ctx, customer_id: &CustomerId) -> Result<EntityList> {
    let mut conn = ctx.pool.acquire().await?;
    let customer = find(&mut conn, customer_id.as_str()).await?;
    let data = in_view(&mut conn, &ctx.catalog, customer.pk).await?;
    Ok(EntityList {
        customer_id: customer_id.to_string(),
        data,
    })
}

pub(crate) async fn get(
    ctx: &Ctx,
    customer_id: &CustomerId,
    entity_id: &EntityId,
) -> Result<EntityAnswer> {
    let mut conn = ctx.pool.acquire().await?;
    let customer = find(&mut conn, customer_id.as_str()).await?;
    let entity = live(&mut conn, &customer, entity_id.as_str()).await?;
    Ok(answer(&mut conn, &ctx.catalog, customer_id.as_str(), &entity, None).await?)
}

/// Frees the unit of the customer's feature and ends what the entity held here. Its Stripe
/// subscriptions (and open Checkout Sessions) are left as they are, for the operator to
/// cancel: the answer lists them.
pub(crate) async fn delete(
    ctx: &Ctx,
    customer_id: &CustomerId,
    entity_id: &EntityId,
) -> Result<EntityDeleted> {
    let (customer_id, entity_id) = (customer_id.as_str(), entity_id.as_str());
    let mut tx = ctx.pool.begin().await?;
    activity::set_source(&mut tx, "api", None).await?;
    let customer = customers::lock_by_id(&mut tx, customer_id)
        .await?
        .ok_or_else(|| customer_not_found(customer_id))?;
    let entity = live(&mut tx, &customer, entity_id).await?;
    let left = entities::delete(&mut tx, &ctx.catalog, &entity).await?;
    // The unit is given back (recorded as usage of -1, so the usage history adds up).
    balances::track(&mut tx, customer.pk, &entity.feature_id, -1, None).await?;
    tx.commit().await?;
    if !left.subscriptions.is_empty() || !left.checkout_sessions.is_empty() {
        tracing::warn!(
            customer = customer_id,
            entity = entity_id,
            subscriptions = ?left.subscriptions,
            checkout_sessions = ?left.checkout_sessions,
            "entity deleted; its Stripe subscriptions and checkouts are left for the operator"
        );
    }
    Ok(EntityDeleted {
        id: entity.id,
        customer_id: customer_id.to_owned(),
        feature_id: entity.feature_id,
        deleted: true,
        stripe_subscriptions: left.subscriptions,
        open_checkout_sessions: left.checkout_sessions,
    })
}

/// The customer, or with `entity_id` its entity's holder standing in for it (the customer's
/// fields, the holder's pk): what an attach is recorded for.
pub(super) async fn holding(
    conn: &mut PgConnection,
    customer: Customer,
    entity_id: Option<&EntityId>,
) -> Result<Customer> {
    let Some(entity_id) = entity_id else {
        return Ok(customer);
    };
    let entity = live(conn, &customer, entity_id.as_str()).await?;
    Ok(Customer {
        pk: entity.holder_pk,
        ..customer
    })
}

/// Our customer's id for `pk`, and the entity's when `pk` is an entity's holder.
pub(super) async fn owner_ids(
    conn: &mut PgConnection,
    pk: i64,
) -> std::result::Result<(String, Option<String>), sqlx::Error> {
    if let Some(owner) = entities::of_holder(conn, pk).await? {
        return Ok((owner.customer_id.unwrap_or_default(), Some(owner.entity_id)));
    }
    let customer = customers::by_pk(conn, pk).await?;
    Ok((customer.and_then(|c| c.id).unwrap_or_default(), None))
}

/// The customer's live entities as the view lists them.
pub(super) async fn in_view(
    conn: &mut PgConnection,
    catalog: &Catalog,
    customer_pk: i64,
) -> std::result::Result<Vec<EntityView>, sqlx::Error> {
    let mut listed = Vec::new();
    for entity in entities::list(conn, customer_pk).await? {
        listed.push(entity_view(conn, catalog, &entity).await?);
    }
    Ok(listed)
}

async fn entity_view(
    conn: &mut PgConnection,
    catalog: &Catalog,
    entity: &Entity,
) -> std::result::Result<EntityView, sqlx::Error> {
    let products = plans::products(conn, entity.holder_pk).await?;
    let balances = balances::all(conn, entity.holder_pk).await?;
    Ok(EntityView {
        id: entity.id.clone(),
        name: entity.name.clone(),
        feature_id: entity.feature_id.clone(),
        created_at: Time(entity.created_at),
        products: PlanView::all(catalog, &products),
        balances: BalanceView::all(&balances),
    })
}

async fn answer(
    conn: &mut PgConnection,
    catalog: &Catalog,
    customer_id: &str,
    entity: &Entity,
    duplicate: Option<bool>,
) -> std::result::Result<EntityAnswer, sqlx::Error> {
    Ok(EntityAnswer {
        entity: entity_view(conn, catalog, entity).await?,
        customer_id: customer_id.to_owned(),
        duplicate,
    })
}

/// The customer's live entity `entity_id`, else `entity_not_found`.
pub(super) async fn live(
    conn: &mut PgConnection,
    customer: &Customer,
    entity_id: &str,
) -> Result<Entity> {
    entities::live(conn, customer.pk, entity_id)
        .await?
        .ok_or_else(|| Error::NotFound {
            code: "entity_not_found",
            what: format!(
                "entity {entity_id} of customer {}",
                customer.id.as_deref().unwrap_or_default()
            ),
        })
}

fn exhausted(message: String) -> Error {
    Error::Conflict {
        code: "feature_exhausted",
        message,
    }
}
