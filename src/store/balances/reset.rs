//! Resets: `used` and the edits' adjustment back to zero, by a paid Stripe renewal or (for
//! plans without a subscription) by the clock, lazily when a balance is read.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::catalog::Reset;

/// A renewal paid for the service period ending `period_end`: reset the allowance of the
/// subscription's features, once per period (a redelivered or older invoice changes nothing).
pub async fn reset_for_renewal(
    conn: &mut PgConnection,
    customer_pk: i64,
    subscription_id: &str,
    period_end: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let advanced: Option<bool> = sqlx::query_scalar(
        "INSERT INTO stripe_subscriptions AS g (id, customer_pk, reset_period_end)
         VALUES ($1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET reset_period_end = EXCLUDED.reset_period_end
             WHERE g.reset_period_end IS NULL OR g.reset_period_end < EXCLUDED.reset_period_end
         RETURNING true",
    )
    .bind(subscription_id)
    .bind(customer_pk)
    .bind(period_end)
    .fetch_optional(&mut *conn)
    .await?;
    if advanced.is_none() {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE balances SET used = 0, adjustment = 0, next_reset_at = greatest(next_reset_at, $2)
         WHERE customer_pk = $1 AND subscription_backed AND reset <> 'never'",
    )
    .bind(customer_pk)
    .bind(period_end)
    .execute(conn)
    .await?;
    Ok(true)
}

/// Clock resets for balances not backed by a Stripe subscription.
pub(super) async fn reset_due(
    conn: &mut PgConnection,
    customer_pk: i64,
) -> Result<(), sqlx::Error> {
    let due: Vec<(String, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT feature_id, reset, next_reset_at FROM balances
         WHERE customer_pk = $1 AND NOT subscription_backed
           AND next_reset_at <= now() AND reset IS NOT NULL",
    )
    .bind(customer_pk)
    .fetch_all(&mut *conn)
    .await?;
    let now = Utc::now();
    for (feature, reset, mut next) in due {
        let Some(reset) = parse_reset(&reset) else {
            continue;
        };
        while next <= now {
            match reset.next_after(next) {
                Some(n) => next = n,
                None => break,
            }
        }
        sqlx::query(
            "UPDATE balances SET used = 0, adjustment = 0, next_reset_at = $3
             WHERE customer_pk = $1 AND feature_id = $2",
        )
        .bind(customer_pk)
        .bind(feature)
        .bind(next)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub(super) fn reset_name(reset: Reset) -> &'static str {
    match reset {
        Reset::Day => "day",
        Reset::Week => "week",
        Reset::Month => "month",
        Reset::Year => "year",
        Reset::Never => "never",
    }
}

fn parse_reset(name: &str) -> Option<Reset> {
    Some(match name {
        "day" => Reset::Day,
        "week" => Reset::Week,
        "month" => Reset::Month,
        "year" => Reset::Year,
        _ => return None,
    })
}
