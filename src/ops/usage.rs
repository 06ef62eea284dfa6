//! A customer's usage of a feature: totals per day or hour, or the raw records.

use chrono::{DateTime, Utc};

use super::{Ctx, Error, Result, find, known_feature};
use crate::domain::{CustomerId, FeatureId};
use crate::store::balances::{self, Bucket, UsageRecord};
use crate::views::{Time, UsageBucket, UsageView};

/// Which usage: a feature's, in `[from, to)` (by default the 30 days before now).
#[derive(Debug)]
pub(crate) struct UsageQuery {
    pub feature_id: FeatureId,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub bucket: Bucket,
}

/// The most usage records one export holds (narrow `from`/`to` for more).
const MAX_RECORDS: i64 = 100_000;

/// The range asked for, checked: `from` before `to`, at most 366 days (by day) or 31 days
/// (by hour) apart.
fn range(query: &UsageQuery) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    let to = query.to.unwrap_or_else(Utc::now);
    let from = query.from.unwrap_or(to - chrono::Duration::days(30));
    let longest = match query.bucket {
        Bucket::Day => chrono::Duration::days(366),
        Bucket::Hour => chrono::Duration::days(31),
    };
    if from >= to || to - from > longest {
        return Err(Error::invalid(
            "from",
            "must be before `to`, at most 366 days (by day) or 31 days (by hour) before it",
        ));
    }
    Ok((from, to))
}

/// Usage totals per bucket.
pub(crate) async fn totals(ctx: &Ctx, id: &CustomerId, query: &UsageQuery) -> Result<UsageView> {
    let feature = query.feature_id.as_str();
    known_feature(&ctx.catalog, feature)?;
    let (from, to) = range(query)?;
    let mut conn = ctx.pool.acquire().await?;
    let customer = find(&mut conn, id.as_str()).await?;
    let totals =
        balances::usage_totals(&mut conn, customer.pk, feature, (from, to), query.bucket).await?;
    Ok(UsageView {
        customer_id: id.to_string(),
        feature_id: feature.to_owned(),
        from: Time(from),
        to: Time(to),
        data: totals
            .into_iter()
            .map(|(at, total)| UsageBucket {
                bucket: Time(at),
                total,
            })
            .collect(),
    })
}

/// The raw records (the seeds' "export raw event data"), oldest first.
pub(crate) async fn records(
    ctx: &Ctx,
    id: &CustomerId,
    query: &UsageQuery,
) -> Result<Vec<UsageRecord>> {
    let feature = query.feature_id.as_str();
    known_feature(&ctx.catalog, feature)?;
    let (from, to) = range(query)?;
    let mut conn = ctx.pool.acquire().await?;
    let customer = find(&mut conn, id.as_str()).await?;
    Ok(balances::usage_records(&mut conn, customer.pk, feature, (from, to), MAX_RECORDS).await?)
}
