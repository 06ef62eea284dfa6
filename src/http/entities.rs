//! `/v1/customers/{id}/entities`: a customer's entities (teams, workspaces), through
//! [`crate::ops::entities`].

use hyper::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::respond::ok;
use crate::domain::{self, CustomerId, EntityId, FeatureId};
use crate::ops::{self, Ctx};
use crate::web::{ApiError, HttpResponse, json};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateEntity {
    id: EntityId,
    name: Option<String>,
    /// The customer's feature one unit of which the entity uses (e.g. `seats`).
    feature_id: FeatureId,
}

/// `POST /v1/customers/{id}/entities`: 201 with the entity, 200 `duplicate` when it exists
/// with the same body.
#[utoipa::path(post, path = "/v1/customers/{id}/entities", operation_id = "createEntity", tag = "entities",
    params(("id" = String, Path, description = "The customer's id")),
    request_body = CreateEntity,
    responses(
        (status = 201, description = "Created, using one unit of the feature", body = crate::views::EntityAnswer),
        (status = 200, description = "It existed with the same fields", body = crate::views::EntityAnswer),
        (status = 400, description = "invalid_request", body = crate::web::error::ErrorBody),
        (status = 404, description = "not found", body = crate::web::error::ErrorBody),
        (status = 409, description = "conflict", body = crate::web::error::ErrorBody),
    ))]
pub(super) async fn create(
    ctx: &Ctx,
    customer_id: &str,
    body: CreateEntity,
) -> Result<HttpResponse, ApiError> {
    let customer_id: CustomerId = domain::parse("id", customer_id)?;
    let new = ops::entities::NewEntity {
        id: body.id,
        name: body.name,
        feature_id: body.feature_id,
    };
    let (created, answer) = ops::entities::create(ctx, &customer_id, &new).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json(status, &answer))
}

/// `GET /v1/customers/{id}/entities`: the live entities, oldest first.
#[utoipa::path(get, path = "/v1/customers/{id}/entities", operation_id = "listEntities", tag = "entities",
    params(("id" = String, Path, description = "The customer's id")),
    responses(
        (status = 200, description = "The live entities, oldest first", body = crate::views::EntityList),
        (status = 400, description = "invalid_request", body = crate::web::error::ErrorBody),
        (status = 404, description = "not found", body = crate::web::error::ErrorBody),
    ))]
pub(super) async fn list(ctx: &Ctx, customer_id: &str) -> Result<HttpResponse, ApiError> {
    let customer_id: CustomerId = domain::parse("id", customer_id)?;
    Ok(ok(&ops::entities::list(ctx, &customer_id).await?))
}

/// `GET /v1/customers/{id}/entities/{entity_id}`.
#[utoipa::path(get, path = "/v1/customers/{id}/entities/{entity_id}", operation_id = "getEntity", tag = "entities",
    params(("id" = String, Path, description = "The customer's id"), ("entity_id" = String, Path, description = "The entity's id")),
    responses(
        (status = 200, description = "The entity", body = crate::views::EntityAnswer),
        (status = 400, description = "invalid_request", body = crate::web::error::ErrorBody),
        (status = 404, description = "not found", body = crate::web::error::ErrorBody),
    ))]
pub(super) async fn get(
    ctx: &Ctx,
    customer_id: &str,
    entity_id: &str,
) -> Result<HttpResponse, ApiError> {
    let (customer_id, entity_id) = ids(customer_id, entity_id)?;
    Ok(ok(&ops::entities::get(ctx, &customer_id, &entity_id).await?))
}

/// `DELETE /v1/customers/{id}/entities/{entity_id}`.
#[utoipa::path(delete, path = "/v1/customers/{id}/entities/{entity_id}", operation_id = "deleteEntity", tag = "entities",
    params(("id" = String, Path, description = "The customer's id"), ("entity_id" = String, Path, description = "The entity's id")),
    responses(
        (status = 200, description = "Deleted; what is left in Stripe", body = crate::views::EntityDeleted),
        (status = 400, description = "invalid_request", body = crate::web::error::ErrorBody),
        (status = 404, description = "not found", body = crate::web::error::ErrorBody),
    ))]
pub(super) async fn delete(
    ctx: &Ctx,
    customer_id: &str,
    entity_id: &str,
) -> Result<HttpResponse, ApiError> {
    let (customer_id, entity_id) = ids(customer_id, entity_id)?;
    Ok(ok(
        &ops::entities::delete(ctx, &customer_id, &entity_id).await?
    ))
}

fn ids(customer_id: &str, entity_id: &str) -> Result<(CustomerId, EntityId), domain::Invalid> {
    Ok((
        domain::parse("id", customer_id)?,
        domain::parse("entity_id", entity_id)?,
    ))
}
