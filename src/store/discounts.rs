//! Coupons and discounts: the coupons we know (made for a catalog reward, per account, or
//! seen in Stripe) and the discounts on our customers' subscriptions, newest event wins.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;

/// A coupon's details, as Stripe shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Coupon {
    pub id: String,
    pub name: Option<String>,
    pub percent_off: Option<f64>,
    pub amount_off: Option<i64>,
    pub currency: Option<String>,
    /// `once`, `forever` or `repeating`.
    pub duration: Option<String>,
    pub duration_in_months: Option<i32>,
    /// The catalog reward it was made for (our coupons carry `metadata.reward_id`).
    pub reward_id: Option<String>,
    pub deleted: bool,
}

/// Which reward a coupon we made stands for: the reward's content and the Stripe account.
#[derive(Debug, Clone, Copy)]
pub struct RewardCoupon<'a> {
    pub reward_id: &'a str,
    pub digest: &'a str,
    pub account: &'a str,
}

/// The coupon made for the reward in this version and account, if any.
pub async fn reward_coupon(
    conn: &mut PgConnection,
    made_for: RewardCoupon<'_>,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM stripe_coupons
         WHERE reward_id = $1 AND reward_digest = $2 AND stripe_account = $3 AND NOT deleted
         ORDER BY created_at DESC LIMIT 1",
    )
    .bind(made_for.reward_id)
    .bind(made_for.digest)
    .bind(made_for.account)
    .fetch_optional(conn)
    .await
}

/// Records a coupon as seen at `observed` (an event's `created`, or when it was read from
/// the API); an older sighting changes nothing, a deletion stays. `made_for`: we made it
/// for that reward. False when stale.
pub async fn save_coupon(
    conn: &mut PgConnection,
    coupon: &Coupon,
    made_for: Option<RewardCoupon<'_>>,
    observed: i64,
) -> Result<bool, sqlx::Error> {
    let saved = sqlx::query(
        "INSERT INTO stripe_coupons AS c (id, reward_id, reward_digest, stripe_account, name,
                 percent_off, amount_off, currency, duration, duration_in_months, deleted,
                 source_created)
         VALUES ($1, coalesce($2, $12), $3, $4, $5, $6, $7, $8, $9, $10, $11, $13)
         ON CONFLICT (id) DO UPDATE SET
             reward_id = coalesce(c.reward_id, EXCLUDED.reward_id),
             reward_digest = coalesce(c.reward_digest, EXCLUDED.reward_digest),
             stripe_account = coalesce(c.stripe_account, EXCLUDED.stripe_account),
             name = EXCLUDED.name, percent_off = EXCLUDED.percent_off,
             amount_off = EXCLUDED.amount_off, currency = EXCLUDED.currency,
             duration = EXCLUDED.duration, duration_in_months = EXCLUDED.duration_in_months,
             deleted = c.deleted OR EXCLUDED.deleted, source_created = EXCLUDED.source_created
         WHERE c.source_created <= EXCLUDED.source_created",
    )
    .bind(&coupon.id)
    .bind(made_for.map(|m| m.reward_id))
    .bind(made_for.map(|m| m.digest))
    .bind(made_for.map(|m| m.account))
    .bind(&coupon.name)
    .bind(coupon.percent_off)
    .bind(coupon.amount_off)
    .bind(&coupon.currency)
    .bind(&coupon.duration)
    .bind(coupon.duration_in_months)
    .bind(coupon.deleted)
    .bind(&coupon.reward_id)
    .bind(observed)
    .execute(&mut *conn)
    .await?;
    if let Some(made_for) = made_for {
        // Ours whatever the details' order: a `coupon.created` applied first lacks these.
        sqlx::query(
            "UPDATE stripe_coupons SET reward_id = $2, reward_digest = $3, stripe_account = $4
             WHERE id = $1",
        )
        .bind(&coupon.id)
        .bind(made_for.reward_id)
        .bind(made_for.digest)
        .bind(made_for.account)
        .execute(conn)
        .await?;
    }
    Ok(saved.rows_affected() == 1)
}

/// Whether we know the coupon's details.
pub async fn coupon_known(conn: &mut PgConnection, id: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM stripe_coupons WHERE id = $1)")
        .bind(id)
        .fetch_one(conn)
        .await
}

/// A discount as one event (or one read from the API) shows it.
#[derive(Debug, Clone)]
pub struct DiscountState<'a> {
    pub id: &'a str,
    pub customer_pk: i64,
    pub coupon_id: &'a str,
    pub promotion_code_id: Option<&'a str>,
    pub subscription_id: Option<&'a str>,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
    /// Set by `customer.discount.deleted`: when it was removed.
    pub removed_at: Option<DateTime<Utc>>,
    pub observed: i64,
}

/// Inserts or updates the discount unless a newer event for it was applied (a removal wins
/// a tie, and stays); false when stale.
pub async fn record(conn: &mut PgConnection, d: &DiscountState<'_>) -> Result<bool, sqlx::Error> {
    let rank = i32::from(d.removed_at.is_some());
    let done = sqlx::query(
        "INSERT INTO customer_discounts AS d (id, customer_pk, coupon_id, promotion_code_id,
                 stripe_subscription_id, start_at, end_at, removed_at, source_created,
                 source_rank)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (id) DO UPDATE SET
             coupon_id = EXCLUDED.coupon_id, promotion_code_id = EXCLUDED.promotion_code_id,
             stripe_subscription_id = coalesce(EXCLUDED.stripe_subscription_id,
                                               d.stripe_subscription_id),
             start_at = EXCLUDED.start_at, end_at = EXCLUDED.end_at,
             removed_at = coalesce(d.removed_at, EXCLUDED.removed_at),
             source_created = EXCLUDED.source_created, source_rank = EXCLUDED.source_rank
         WHERE (d.source_created, d.source_rank) <= (EXCLUDED.source_created, EXCLUDED.source_rank)",
    )
    .bind(d.id)
    .bind(d.customer_pk)
    .bind(d.coupon_id)
    .bind(d.promotion_code_id)
    .bind(d.subscription_id)
    .bind(d.start)
    .bind(d.end)
    .bind(d.removed_at)
    .bind(d.observed)
    .bind(rank)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A discount as the customer view shows it: with its coupon's details (null until the
/// coupon is known) and the plan its subscription grants.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DiscountRow {
    pub id: String,
    pub reward_id: Option<String>,
    pub coupon_id: String,
    pub name: Option<String>,
    pub promotion_code_id: Option<String>,
    pub percent_off: Option<f64>,
    pub amount_off: Option<i64>,
    pub currency: Option<String>,
    pub duration: Option<String>,
    pub duration_in_months: Option<i32>,
    #[serde(rename = "start")]
    pub start_at: DateTime<Utc>,
    #[serde(rename = "end")]
    pub end_at: Option<DateTime<Utc>>,
    #[serde(rename = "subscription_id")]
    pub stripe_subscription_id: Option<String>,
    pub plan_id: Option<String>,
}

/// The customer's discounts that still apply, oldest first: not removed, not past their
/// end, on a subscription that has not ended.
pub async fn active(
    conn: &mut PgConnection,
    customer_pk: i64,
) -> Result<Vec<DiscountRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT d.id, c.reward_id, d.coupon_id, c.name, d.promotion_code_id, c.percent_off,
                c.amount_off, c.currency, c.duration, c.duration_in_months, d.start_at,
                d.end_at, d.stripe_subscription_id, s.plan_id
         FROM customer_discounts d
         LEFT JOIN stripe_coupons c ON c.id = d.coupon_id
         LEFT JOIN stripe_subscriptions s ON s.id = d.stripe_subscription_id
         WHERE d.customer_pk = $1 AND d.removed_at IS NULL
           AND (d.end_at IS NULL OR d.end_at > now())
           AND (s.status IS NULL OR s.status NOT IN ('canceled', 'incomplete_expired'))
         ORDER BY d.start_at, d.id",
    )
    .bind(customer_pk)
    .fetch_all(conn)
    .await
}

/// Coupon and reward of each of the discounts `ids` that we know, by discount id.
pub async fn coupons_of(
    conn: &mut PgConnection,
    ids: &[String],
) -> Result<Vec<(String, String, Option<String>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT d.id, d.coupon_id, c.reward_id FROM customer_discounts d
         LEFT JOIN stripe_coupons c ON c.id = d.coupon_id
         WHERE d.id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(conn)
    .await
}
