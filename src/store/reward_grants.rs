//! Rewards given: to a live subscription (`reward_grants`, one row per request, carried out
//! by the `reward.apply` job), and with an attach (`attach_rewards`: what its subscription or
//! Checkout Session gets).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;

/// A reward or a promotion code, as a request named it.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Offer {
    /// Our catalog reward.
    pub reward_id: Option<String>,
    /// The code as typed, and the Stripe promotion code (`promo_...`) it was found as.
    pub promotion_code: Option<String>,
    pub promotion_code_id: Option<String>,
    /// A Checkout Session lets the customer type a code (only without the above).
    pub allow_promotion_codes: bool,
}

impl Offer {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Records what the attach carries (nothing for an empty offer).
pub async fn set_attach_offer(
    conn: &mut PgConnection,
    attach_id: &str,
    offer: &Offer,
) -> Result<(), sqlx::Error> {
    if offer.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO attach_rewards (attach_id, reward_id, promotion_code, promotion_code_id,
                                     allow_promotion_codes)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (attach_id) DO NOTHING",
    )
    .bind(attach_id)
    .bind(&offer.reward_id)
    .bind(&offer.promotion_code)
    .bind(&offer.promotion_code_id)
    .bind(offer.allow_promotion_codes)
    .execute(conn)
    .await?;
    Ok(())
}

/// What the attach carries (empty when nothing).
pub async fn attach_offer(conn: &mut PgConnection, attach_id: &str) -> Result<Offer, sqlx::Error> {
    let offer: Option<Offer> = sqlx::query_as(
        "SELECT reward_id, promotion_code, promotion_code_id, allow_promotion_codes
         FROM attach_rewards WHERE attach_id = $1",
    )
    .bind(attach_id)
    .fetch_optional(conn)
    .await?;
    Ok(offer.unwrap_or_default())
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Grant {
    pub id: String,
    #[serde(skip)]
    pub customer_pk: i64,
    pub reward_id: Option<String>,
    pub promotion_code: Option<String>,
    #[serde(skip)]
    pub promotion_code_id: Option<String>,
    pub plan_id: String,
    pub stripe_subscription_id: String,
    /// `pending` until the job ran, then `done` or `failed`.
    pub state: String,
    /// `applied`, or `unchanged` when the subscription had a discount from that coupon.
    pub outcome: Option<String>,
    /// The Stripe discount (`di_...`) the reward is on the subscription as.
    pub discount_id: Option<String>,
    pub error: Option<String>,
    #[serde(rename = "requested_by")]
    pub actor: String,
    #[serde(skip)]
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, customer_pk, reward_id, promotion_code, promotion_code_id, plan_id, \
                       stripe_subscription_id, state, outcome, discount_id, error, actor, \
                       idempotency_key, created_at, updated_at";

/// What a new grant asks for.
#[derive(Debug, Clone)]
pub struct NewGrant<'a> {
    pub customer_pk: i64,
    pub offer: &'a Offer,
    pub plan_id: &'a str,
    pub subscription_id: &'a str,
    pub actor: &'a str,
    pub idempotency_key: Option<&'a str>,
}

impl super::requests::Table for Grant {
    const TABLE: &'static str = "reward_grants";
    const COLUMNS: &'static str = COLUMNS;
}

/// Records a pending grant; `None` when the customer used its idempotency key before (the
/// unique index says so, whatever the concurrency).
pub async fn insert(
    conn: &mut PgConnection,
    grant: &NewGrant<'_>,
) -> Result<Option<Grant>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO reward_grants (id, customer_pk, reward_id, promotion_code, promotion_code_id,
                                    plan_id, stripe_subscription_id, actor, idempotency_key)
         VALUES ('rwd_' || replace(gen_random_uuid()::text, '-', ''), $1, $2, $3, $4, $5, $6,
                 $7, $8)
         ON CONFLICT (customer_pk, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
         RETURNING {COLUMNS}"
    )))
    .bind(grant.customer_pk)
    .bind(&grant.offer.reward_id)
    .bind(&grant.offer.promotion_code)
    .bind(&grant.offer.promotion_code_id)
    .bind(grant.plan_id)
    .bind(grant.subscription_id)
    .bind(grant.actor)
    .bind(grant.idempotency_key)
    .fetch_optional(conn)
    .await
}

pub async fn get(conn: &mut PgConnection, id: &str) -> Result<Option<Grant>, sqlx::Error> {
    super::requests::get(conn, id).await
}

/// A pending grant was carried out: `outcome` says what it did.
pub async fn finish(
    conn: &mut PgConnection,
    id: &str,
    outcome: &str,
    discount_id: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE reward_grants SET state = 'done', outcome = $2, discount_id = $3,
                updated_at = now()
         WHERE id = $1 AND state = 'pending'",
    )
    .bind(id)
    .bind(outcome)
    .bind(discount_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The customer's held plans backed by a Stripe subscription (those a reward can go to):
/// (plan id, subscription id), oldest first.
pub async fn live_subscriptions(
    conn: &mut PgConnection,
    customer_pk: i64,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT plan_id, stripe_subscription_id FROM customer_plans
         WHERE customer_pk = $1 AND stripe_subscription_id IS NOT NULL
           AND status IN {}
         ORDER BY id",
        crate::access::HELD_SQL
    )))
    .bind(customer_pk)
    .fetch_all(conn)
    .await
}
