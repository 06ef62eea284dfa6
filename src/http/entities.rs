//! `/v1/customers/{id}/entities`: a customer's entities (teams, workspaces), each using one
//! unit of a feature of the customer's while it lives; and the entity side of `/v1/check`,
//! `/v1/track` and `/v1/attach` (`entity_id`). An entity's plans and balances are kept under
//! its holder ([`crate::store::entities`]); without a grant of its own, an entity's check
//! and track use its customer's balance.

use hyper::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use sqlx::PgConnection;

use super::customers::{balance, find, product, time};
use super::error::{ApiError, HttpResponse, json};
use super::{AppState, input};
use crate::catalog::{Catalog, FeatureKind};
use crate::store::customers::{self, Customer};
use crate::store::entities::{self, Entity};
use crate::store::{activity, balances, plans};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateEntity {
    id: String,
    name: Option<String>,
    /// The customer's feature one unit of which the entity uses (e.g. `seats`).
    feature_id: String,
}

/// The longest entity name, in characters (as a customer's).
const MAX_NAME_CHARS: usize = 255;

/// `POST /v1/customers/{id}/entities`: 201 with the entity, using one unit of `feature_id`
/// of the customer's; 200 `duplicate` when it exists with the same body; 409
/// `feature_exhausted` when none is left (`plan_suspended` when only a suspended plan grants
/// it), `entity_exists` when the id is taken with another name or feature.
pub(super) async fn create(
    state: &AppState,
    customer_id: &str,
    body: CreateEntity,
) -> Result<HttpResponse, ApiError> {
    input::id("id", customer_id)?;
    input::id("id", &body.id)?;
    input::text("name", body.name.as_deref(), MAX_NAME_CHARS)?;
    input::id("feature_id", &body.feature_id)?;
    match state.catalog.feature(&body.feature_id).map(|f| f.kind) {
        None => return Err(feature_not_found(&body.feature_id)),
        Some(FeatureKind::Boolean) => {
            return Err(ApiError::invalid(
                "feature_id",
                "must be a metered feature: an entity uses one unit of it",
            ));
        }
        Some(FeatureKind::Metered) => {}
    }
    let mut tx = state.pool.begin().await?;
    activity::set_source(&mut tx, "api", None).await?;
    // Locked: entities of one customer are created one at a time, each seeing the units the
    // others used (and a concurrent delete of the customer waits, or has won).
    let customer = customers::lock_by_id(&mut tx, customer_id)
        .await?
        .ok_or_else(|| customer_not_found(customer_id))?;
    if let Some(existing) = entities::live(&mut tx, customer.pk, &body.id).await? {
        if existing.name != body.name || existing.feature_id != body.feature_id {
            return Err(ApiError::Conflict {
                code: "entity_exists",
                message: format!(
                    "entity {} of customer {customer_id} exists with another name or feature_id",
                    body.id
                ),
            });
        }
        let answer = answer(&mut tx, &state.catalog, customer_id, &existing, true).await?;
        tx.commit().await?;
        return Ok(json(StatusCode::OK, &answer));
    }
    let feature = &body.feature_id;
    let left = balances::current(&mut tx, customer.pk, feature).await?;
    match &left {
        None => {
            return Err(exhausted(format!(
                "customer {customer_id} has no {feature}: no plan of theirs grants it"
            )));
        }
        Some(b) if b.suspended => {
            return Err(ApiError::Conflict {
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
    let name = body.name.as_deref();
    let entity = entities::create(&mut tx, customer.pk, &body.id, name, feature).await?;
    balances::track(&mut tx, customer.pk, feature, 1, None).await?;
    let answer = answer(&mut tx, &state.catalog, customer_id, &entity, false).await?;
    tx.commit().await?;
    Ok(json(StatusCode::CREATED, &answer))
}

/// `GET /v1/customers/{id}/entities`: the live entities, oldest first, with their plans and
/// balances.
pub(super) async fn list(state: &AppState, customer_id: &str) -> Result<HttpResponse, ApiError> {
    input::id("id", customer_id)?;
    let mut conn = state.pool.acquire().await?;
    let customer = find(&mut conn, customer_id).await?;
    let data = in_view(&mut conn, &state.catalog, customer.pk).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"customer_id": customer_id, "data": data}),
    ))
}

/// `GET /v1/customers/{id}/entities/{entity_id}`.
pub(super) async fn get(
    state: &AppState,
    customer_id: &str,
    entity_id: &str,
) -> Result<HttpResponse, ApiError> {
    input::id("id", customer_id)?;
    input::id("entity_id", entity_id)?;
    let mut conn = state.pool.acquire().await?;
    let customer = find(&mut conn, customer_id).await?;
    let entity = live(&mut conn, &customer, entity_id).await?;
    let mut answer = entity_view(&mut conn, &state.catalog, &entity).await?;
    answer["customer_id"] = customer_id.into();
    Ok(json(StatusCode::OK, &answer))
}

/// `DELETE /v1/customers/{id}/entities/{entity_id}`: frees the unit of the customer's
/// feature and ends what the entity held here. Its Stripe subscriptions (and open Checkout
/// Sessions) are left as they are, for the operator to cancel: the answer lists them.
pub(super) async fn delete(
    state: &AppState,
    customer_id: &str,
    entity_id: &str,
) -> Result<HttpResponse, ApiError> {
    input::id("id", customer_id)?;
    input::id("entity_id", entity_id)?;
    let mut tx = state.pool.begin().await?;
    activity::set_source(&mut tx, "api", None).await?;
    let customer = customers::lock_by_id(&mut tx, customer_id)
        .await?
        .ok_or_else(|| customer_not_found(customer_id))?;
    let entity = live(&mut tx, &customer, entity_id).await?;
    let left = entities::delete(&mut tx, &state.catalog, &entity).await?;
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
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "id": entity.id, "customer_id": customer_id, "feature_id": entity.feature_id,
            "deleted": true,
            "stripe_subscriptions": left.subscriptions,
            "open_checkout_sessions": left.checkout_sessions,
        }),
    ))
}

/// `POST /v1/check` with `entity_id`: the entity's balance of the feature, or the
/// customer's when no plan of the entity grants it (`scope` says which).
pub(super) async fn check(
    state: &AppState,
    customer_id: &str,
    entity_id: &str,
    feature_id: &str,
    required: i64,
) -> Result<HttpResponse, ApiError> {
    input::id("entity_id", entity_id)?;
    let mut tx = state.pool.begin().await?;
    let customer = find(&mut tx, customer_id).await?;
    let entity = live(&mut tx, &customer, entity_id).await?;
    known_feature(&state.catalog, feature_id)?;
    let (scope, balance) = match balances::current(&mut tx, entity.holder_pk, feature_id).await? {
        Some(own) => ("entity", Some(own)),
        None => (
            "customer",
            balances::current(&mut tx, customer.pk, feature_id).await?,
        ),
    };
    tx.commit().await?;
    let (allowed, remaining, unlimited) = match &balance {
        Some(b) => (b.allows(required), b.remaining(), b.unlimited),
        None => (false, 0, false),
    };
    let mut answer = serde_json::json!({
        "customer_id": customer_id, "entity_id": entity_id, "feature_id": feature_id,
        "allowed": allowed, "balance": remaining, "unlimited": unlimited, "scope": scope,
    });
    if balance.as_ref().is_some_and(|b| b.suspended) {
        answer["reason"] = "plan_suspended".into();
    }
    Ok(json(StatusCode::OK, &answer))
}

/// What `/v1/track` records.
pub(super) struct Usage<'a> {
    pub feature_id: &'a str,
    pub value: i64,
    pub idempotency_key: Option<&'a str>,
}

/// `POST /v1/track` with `entity_id`: on the entity's balance of the feature, or the
/// customer's when no plan of the entity grants it; once per `idempotency_key` either way
/// (a retry finds the key where the first call recorded it).
pub(super) async fn track(
    state: &AppState,
    customer_id: &str,
    entity_id: &str,
    usage: Usage<'_>,
) -> Result<HttpResponse, ApiError> {
    input::id("entity_id", entity_id)?;
    let feature_id = usage.feature_id;
    let mut tx = state.pool.begin().await?;
    let customer = find(&mut tx, customer_id).await?;
    let entity = live(&mut tx, &customer, entity_id).await?;
    known_feature(&state.catalog, feature_id)?;
    let pks = [entity.holder_pk, customer.pk];
    let recorded = match usage.idempotency_key {
        Some(key) => entities::usage_key_owner(&mut tx, &pks, key).await?,
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
            let key = usage.idempotency_key;
            let (balance, duplicate) =
                balances::track(&mut tx, pk, feature_id, usage.value, key).await?;
            (pk, balance, duplicate)
        }
    };
    tx.commit().await?;
    let scope = if pk == entity.holder_pk {
        "entity"
    } else {
        "customer"
    };
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "customer_id": customer_id, "entity_id": entity_id, "feature_id": feature_id,
            "balance": balance.as_ref().map_or(0, balances::Balance::remaining),
            "duplicate": duplicate, "scope": scope,
        }),
    ))
}

/// The customer, or with `entity_id` its entity's holder standing in for it (the customer's
/// fields, the holder's pk): what `/v1/attach` records the attach for.
pub(super) async fn holding(
    conn: &mut PgConnection,
    customer: Customer,
    entity_id: Option<&str>,
) -> Result<Customer, ApiError> {
    let Some(entity_id) = entity_id else {
        return Ok(customer);
    };
    let entity = live(conn, &customer, entity_id).await?;
    Ok(Customer {
        pk: entity.holder_pk,
        ..customer
    })
}

/// Our customer's id for `pk`, and the entity's when `pk` is an entity's holder.
pub(super) async fn owner_ids(
    conn: &mut PgConnection,
    pk: i64,
) -> Result<(String, Option<String>), sqlx::Error> {
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
) -> Result<Vec<Value>, sqlx::Error> {
    let mut listed = Vec::new();
    for entity in entities::list(conn, customer_pk).await? {
        listed.push(entity_view(conn, catalog, &entity).await?);
    }
    Ok(listed)
}

/// An entity: who, the feature it uses, its plans that have not ended and its balances.
async fn entity_view(
    conn: &mut PgConnection,
    catalog: &Catalog,
    entity: &Entity,
) -> Result<Value, sqlx::Error> {
    let products = plans::products(conn, entity.holder_pk).await?;
    let balances = balances::all(conn, entity.holder_pk).await?;
    Ok(serde_json::json!({
        "id": entity.id, "name": entity.name, "feature_id": entity.feature_id,
        "created_at": time(Some(entity.created_at)),
        "products": products.iter().map(|p| product(catalog, p)).collect::<Vec<_>>(),
        "balances": balances.iter().map(balance).collect::<Vec<_>>(),
    }))
}

/// The entity as create answers it.
async fn answer(
    conn: &mut PgConnection,
    catalog: &Catalog,
    customer_id: &str,
    entity: &Entity,
    duplicate: bool,
) -> Result<Value, sqlx::Error> {
    let mut answer = entity_view(conn, catalog, entity).await?;
    answer["customer_id"] = customer_id.into();
    answer["duplicate"] = duplicate.into();
    Ok(answer)
}

/// The customer's live entity `entity_id`, else 404 `entity_not_found`.
async fn live(
    conn: &mut PgConnection,
    customer: &Customer,
    entity_id: &str,
) -> Result<Entity, ApiError> {
    entities::live(conn, customer.pk, entity_id)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            code: "entity_not_found",
            what: format!(
                "entity {entity_id} of customer {}",
                customer.id.as_deref().unwrap_or_default()
            ),
        })
}

fn known_feature(catalog: &Catalog, id: &str) -> Result<(), ApiError> {
    match catalog.feature(id) {
        Some(_) => Ok(()),
        None => Err(feature_not_found(id)),
    }
}

fn feature_not_found(id: &str) -> ApiError {
    ApiError::NotFound {
        code: "feature_not_found",
        what: format!("feature {id}"),
    }
}

fn customer_not_found(id: &str) -> ApiError {
    ApiError::NotFound {
        code: "customer_not_found",
        what: format!("customer {id}"),
    }
}

fn exhausted(message: String) -> ApiError {
    ApiError::Conflict {
        code: "feature_exhausted",
        message,
    }
}
