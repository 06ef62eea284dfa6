//! Entities: teams or workspaces inside a customer. Each uses a unit of a feature of its
//! customer's (a seat) while it lives, and may hold plans of its own.
//!
//! An entity's plans, balances and usage live under its *holder*: a `customers` row with no
//! id of its own and `parent_pk` naming the customer (migration 21). Every function of
//! [`super::plans`] and [`super::balances`] works on a holder as on a customer, so an
//! entity's plans and balances are apart from its customer's under the same rules. A holder
//! is never listed as a customer and never linked to Stripe ([`payer`] is its customer).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::balances;
use crate::catalog::Catalog;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Entity {
    pub pk: i64,
    /// The customer it belongs to.
    pub customer_pk: i64,
    pub id: String,
    pub name: Option<String>,
    /// The customer's feature one unit of which it uses.
    pub feature_id: String,
    /// Where its plans, balances and usage are kept.
    pub holder_pk: i64,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "pk, customer_pk, id, name, feature_id, holder_pk, created_at";

/// Creates an entity of the customer, with its holder. The caller holds the customer's lock
/// and has checked that no live entity has this id (the unique index is the backstop).
pub async fn create(
    conn: &mut PgConnection,
    customer_pk: i64,
    id: &str,
    name: Option<&str>,
    feature_id: &str,
) -> Result<Entity, sqlx::Error> {
    let entity: Entity = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH holder AS (INSERT INTO customers (parent_pk) VALUES ($1) RETURNING pk)
         INSERT INTO entities (customer_pk, id, name, feature_id, holder_pk)
         SELECT $1, $2, $3, $4, pk FROM holder
         RETURNING {COLUMNS}"
    )))
    .bind(customer_pk)
    .bind(id)
    .bind(name)
    .bind(feature_id)
    .fetch_one(&mut *conn)
    .await?;
    record(conn, &entity, "entity.created").await?;
    Ok(entity)
}

/// The customer's live entity with `id`.
pub async fn live(
    conn: &mut PgConnection,
    customer_pk: i64,
    id: &str,
) -> Result<Option<Entity>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM entities
         WHERE customer_pk = $1 AND id = $2 AND deleted_at IS NULL"
    )))
    .bind(customer_pk)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The customer's live entities, oldest first.
pub async fn list(conn: &mut PgConnection, customer_pk: i64) -> Result<Vec<Entity>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM entities
         WHERE customer_pk = $1 AND deleted_at IS NULL ORDER BY created_at, pk"
    )))
    .bind(customer_pk)
    .fetch_all(conn)
    .await
}

/// Whom a holder stands for: its customer's id and the entity's.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Owner {
    pub customer_id: Option<String>,
    pub entity_id: String,
    pub deleted: bool,
}

/// The entity `holder_pk` stands for (deleted or not); `None` for a customer's own pk.
pub async fn of_holder(
    conn: &mut PgConnection,
    holder_pk: i64,
) -> Result<Option<Owner>, sqlx::Error> {
    sqlx::query_as(
        "SELECT c.id AS customer_id, e.id AS entity_id, e.deleted_at IS NOT NULL AS deleted
         FROM entities e JOIN customers c ON c.pk = e.customer_pk
         WHERE e.holder_pk = $1",
    )
    .bind(holder_pk)
    .fetch_optional(conn)
    .await
}

/// Who pays for what `pk` holds: its customer for a holder, else `pk` itself (whose Stripe
/// customer it is).
pub async fn payer(conn: &mut PgConnection, pk: i64) -> Result<i64, sqlx::Error> {
    let parent: Option<Option<i64>> =
        sqlx::query_scalar("SELECT parent_pk FROM customers WHERE pk = $1")
            .bind(pk)
            .fetch_optional(conn)
            .await?;
    Ok(parent.flatten().unwrap_or(pk))
}

/// Whose a subscription of a customer's Stripe customer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionOwner {
    /// The customer's own, or a live entity's: the pk its plans are kept under.
    Pk(i64),
    /// An entity that was deleted (its subscription is the operator's to cancel).
    Deleted { entity_id: String, holder_pk: i64 },
    /// `metadata.entity_id` names no entity of the customer.
    Unknown(String),
}

/// Whose `subscription_id` is, for the customer `customer_pk` its Stripe customer maps to:
/// once any of its state is stored, whoever it was stored for (so its events map alike in
/// any order, whatever its metadata says later); else the entity its `metadata.entity_id`
/// names (live first), else the customer.
pub async fn subscription_owner(
    conn: &mut PgConnection,
    customer_pk: i64,
    subscription_id: &str,
    entity_id: Option<&str>,
) -> Result<SubscriptionOwner, sqlx::Error> {
    let stored: Option<StoredOwner> = sqlx::query_as(STORED_OWNER)
        .bind(subscription_id)
        .fetch_optional(&mut *conn)
        .await?;
    owner_of(conn, customer_pk, stored, entity_id).await
}

/// Whom a subscription's state was stored for: that pk, and the entity it holds if it is an
/// entity's holder (its id, whether it was deleted).
pub type StoredOwner = (i64, Option<String>, bool);

/// [`StoredOwner`] of the subscription `$1`, if any of its state is stored (the SQL function
/// `stored_owner`, migration 32: [`subscription_refs`] and the batch's preflight read it too).
const STORED_OWNER: &str = "SELECT customer_pk, entity_id, deleted FROM stored_owner($1)";

/// What applying a subscription starts from, read in one statement: our customer for its
/// Stripe customer (by `stripe_id`, else by our id in its metadata: `by_stripe` false) and
/// whom its state was stored for. With `source`, the transaction's changes are attributed to
/// it first ([`activity::set_source`](super::activity::set_source)).
pub async fn subscription_refs(
    conn: &mut PgConnection,
    source: Option<(&str, i64)>,
    stripe_customer: &str,
    our_id: Option<&str>,
    subscription_id: &str,
) -> Result<SubscriptionRefs, sqlx::Error> {
    type Row = (
        Option<String>,
        Option<i64>,
        Option<bool>,
        Option<i64>,
        Option<String>,
        Option<bool>,
    );
    // `customer_for` and `stored_owner` are SQL functions (migration 32), inlined here.
    let row: Row = sqlx::query_as(
        "SELECT sourced.settings, c.pk, c.by_stripe, o.customer_pk, o.entity_id, o.deleted
             FROM (SELECT CASE WHEN $1::text IS NOT NULL
                               THEN set_config('reconciler.source', $1, true)
                                    || set_config('reconciler.at', $2::text, true) END
                   AS settings) AS sourced
             LEFT JOIN LATERAL customer_for($3, $4) c ON true
             LEFT JOIN LATERAL stored_owner($5) o ON true",
    )
    .bind(source.map(|(id, _)| id))
    .bind(source.map(|(_, at)| at))
    .bind(stripe_customer)
    .bind(our_id)
    .bind(subscription_id)
    .fetch_one(conn)
    .await?;
    let (_settings, pk, by_stripe, stored_pk, entity, deleted) = row;
    Ok(SubscriptionRefs {
        customer: pk.zip(by_stripe),
        stored: stored_pk.map(|pk| (pk, entity, deleted.unwrap_or(false))),
    })
}

/// [`subscription_refs`]' answer.
#[derive(Debug)]
pub struct SubscriptionRefs {
    /// Our customer's pk, and whether it was found by its `stripe_id`.
    pub customer: Option<(i64, bool)>,
    pub stored: Option<StoredOwner>,
}

/// [`subscription_owner`] from its stored owner as read already.
pub async fn owner_of(
    conn: &mut PgConnection,
    customer_pk: i64,
    stored: Option<StoredOwner>,
    entity_id: Option<&str>,
) -> Result<SubscriptionOwner, sqlx::Error> {
    match stored {
        Some((holder_pk, Some(entity_id), true)) => {
            return Ok(SubscriptionOwner::Deleted {
                entity_id,
                holder_pk,
            });
        }
        Some((pk, _, false)) => return Ok(SubscriptionOwner::Pk(pk)),
        _ => {}
    }
    let Some(entity_id) = entity_id else {
        return Ok(SubscriptionOwner::Pk(customer_pk));
    };
    let named: Option<(i64, bool)> = sqlx::query_as(
        "SELECT holder_pk, deleted_at IS NOT NULL FROM entities
         WHERE customer_pk = $1 AND id = $2
         ORDER BY deleted_at IS NULL DESC, pk DESC LIMIT 1",
    )
    .bind(customer_pk)
    .bind(entity_id)
    .fetch_optional(conn)
    .await?;
    Ok(match named {
        Some((holder, false)) => SubscriptionOwner::Pk(holder),
        Some((holder_pk, true)) => SubscriptionOwner::Deleted {
            entity_id: entity_id.to_owned(),
            holder_pk,
        },
        None => SubscriptionOwner::Unknown(entity_id.to_owned()),
    })
}

/// What deleting an entity left in Stripe: the operator's to cancel or let expire.
#[derive(Debug, Clone, Default)]
pub struct LeftInStripe {
    /// Subscriptions that were live, incomplete or scheduled for the entity.
    pub subscriptions: Vec<String>,
    /// Checkout Sessions still open for an attach to the entity.
    pub checkout_sessions: Vec<String>,
}

/// Deletes an entity: what it held here ends now (its plans expire, its balances go, its
/// attaches in flight fail), and the entity is kept as deleted. Its Stripe objects are not
/// touched: they are returned, for the operator. The unit of its feature is the caller's to
/// free.
pub async fn delete(
    conn: &mut PgConnection,
    catalog: &Catalog,
    entity: &Entity,
) -> Result<LeftInStripe, sqlx::Error> {
    let holder = entity.holder_pk;
    let subscriptions: Vec<String> = sqlx::query_scalar(
        "SELECT stripe_subscription_id FROM customer_plans
         WHERE customer_pk = $1 AND stripe_subscription_id IS NOT NULL
           AND status NOT IN ('expired', 'canceled')
         UNION
         SELECT stripe_subscription_id FROM attaches
         WHERE customer_pk = $1 AND stripe_subscription_id IS NOT NULL
           AND state IN ('pending', 'awaiting_payment', 'requires_action')
         ORDER BY 1",
    )
    .bind(holder)
    .fetch_all(&mut *conn)
    .await?;
    let checkout_sessions: Vec<String> = sqlx::query_scalar(
        "SELECT checkout_session_id FROM attaches
         WHERE customer_pk = $1 AND state = 'checkout_required' AND checkout_session_id IS NOT NULL
         ORDER BY created_at",
    )
    .bind(holder)
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE attaches SET state = 'failed', error = 'the entity was deleted',
                action_url = NULL, updated_at = now()
         WHERE customer_pk = $1
           AND state IN ('pending', 'checkout_required', 'awaiting_payment', 'requires_action')",
    )
    .bind(holder)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE customer_plans SET status = 'expired', ended_at = coalesce(ended_at, now()),
                updated_at = now()
         WHERE customer_pk = $1 AND status NOT IN ('expired', 'canceled')",
    )
    .bind(holder)
    .execute(&mut *conn)
    .await?;
    balances::provision(conn, catalog, holder).await?;
    sqlx::query("UPDATE entities SET deleted_at = now() WHERE pk = $1")
        .bind(entity.pk)
        .execute(&mut *conn)
        .await?;
    record(conn, entity, "entity.deleted").await?;
    Ok(LeftInStripe {
        subscriptions,
        checkout_sessions,
    })
}

/// Which of `pks` recorded usage under `idempotency_key`, if one did: an entity's track
/// may land on the entity's balance or its customer's, and a retry must find it either way.
pub async fn usage_key_owner(
    conn: &mut PgConnection,
    pks: &[i64],
    idempotency_key: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT customer_pk FROM usage_events
         WHERE customer_pk = ANY($1) AND idempotency_key = $2 LIMIT 1",
    )
    .bind(pks)
    .bind(idempotency_key)
    .fetch_optional(conn)
    .await
}

/// A timeline entry of the customer's about the entity, under the transaction's source.
async fn record(conn: &mut PgConnection, entity: &Entity, kind: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO activity (customer_pk, kind, at, source, detail)
         VALUES ($1, $2, activity_at(), activity_source(),
                 jsonb_strip_nulls(jsonb_build_object('entity_id', $3::text, 'name', $4::text,
                                                      'feature_id', $5::text)))",
    )
    .bind(entity.customer_pk)
    .bind(kind)
    .bind(&entity.id)
    .bind(&entity.name)
    .bind(&entity.feature_id)
    .execute(conn)
    .await?;
    Ok(())
}
