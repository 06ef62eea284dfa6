//! The customer list: newest first, searched in id, name and email, filtered by plan and
//! status, a page at a time.

use super::{Ctx, Error, Result};
use crate::domain::{self, Limit, MAX_TEXT_CHARS, PlanId};
use crate::store::customers;
use crate::views::{ListedCustomer, Page};

/// The statuses a plan can have (the list's `status` filter).
pub(crate) const PLAN_STATUSES: &[&str] = &[
    "active",
    "trialing",
    "past_due",
    "unpaid",
    "incomplete",
    "paused",
    "scheduled",
    "canceled",
    "expired",
];

/// Which customers, and which page of them.
#[derive(Debug, Clone)]
pub(crate) struct ListQuery {
    /// In id, name and email; empty is none.
    pub search: Option<String>,
    pub plan_id: Option<PlanId>,
    /// One of [`PLAN_STATUSES`].
    pub status: Option<String>,
    pub limit: Limit,
    /// The `next_cursor` of the page before.
    pub cursor: Option<String>,
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            search: None,
            plan_id: None,
            status: None,
            limit: Limit::DEFAULT,
            cursor: None,
        }
    }
}

pub(crate) async fn list(ctx: &Ctx, query: &ListQuery) -> Result<Page<ListedCustomer>> {
    domain::text("search", query.search.as_deref(), MAX_TEXT_CHARS)?;
    let search = query.search.as_deref().filter(|s| !s.is_empty());
    if let Some(status) = &query.status
        && !PLAN_STATUSES.contains(&status.as_str())
    {
        return Err(Error::invalid("status", "must be a plan status"));
    }
    let before_pk = query
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| Error::invalid("cursor", "must be a next_cursor we gave"))
        })
        .transpose()?;
    let limit = query.limit.get();
    let filter = customers::ListFilter {
        search,
        plan_id: query.plan_id.as_ref().map(PlanId::as_str),
        status: query.status.as_deref(),
        limit: limit + 1,
        before_pk,
    };
    let mut conn = ctx.pool.acquire().await?;
    let mut found = customers::list(&mut conn, &filter).await?;
    let more = found.len() as i64 > limit;
    found.truncate(limit as usize);
    let next_cursor = more
        .then(|| found.last().map(|c| c.pk.to_string()))
        .flatten();
    Ok(Page {
        data: found.iter().map(ListedCustomer::from).collect(),
        next_cursor,
    })
}
