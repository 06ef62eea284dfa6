//! Listing and searching customers: keyset pages, filters by plan and status, and the
//! substring search answered from trigram indexes (migration 14), asked for the search's rare
//! parts.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::search_plan::{rare_parts, trigram_freqs};

/// What [`list`] looks for.
#[derive(Debug, Clone, Default)]
pub struct ListFilter<'a> {
    /// A case-insensitive substring of the id, name or email.
    pub search: Option<&'a str>,
    /// Only customers holding this plan (live or suspended)...
    pub plan_id: Option<&'a str>,
    /// ...or holding any plan in this status.
    pub status: Option<&'a str>,
    pub limit: i64,
    /// Keyset pagination: customers created before this one (by `pk`, newest first).
    pub before_pk: Option<i64>,
}

/// A customer in a list: who, and its plans that have not ended.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Listed {
    pub pk: i64,
    pub id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
    /// `(plan_id, status)` of each plan that has not ended.
    pub plans: sqlx::types::Json<Vec<(String, String)>>,
}

/// Customers matching `filter`, newest first.
///
/// A search is a case-insensitive substring of the id, the name or the email, answered from
/// the trigram index of each (migration 14). A search expected to fill the page from the
/// newest customers (`smith`: many match) is first checked on the newest [`WALK`]; the index
/// answers for the rest, or at once for a rarer search. The index is asked for the search's
/// rare parts only ([`rare_parts`]), each a substring of it, and the rows found are checked
/// against the whole search; a search without rare parts is asked whole.
pub async fn list(
    conn: &mut PgConnection,
    filter: &ListFilter<'_>,
) -> Result<Vec<Listed>, sqlx::Error> {
    let search = filter.search.map(str::to_lowercase);
    let (parts, expected) = match &search {
        Some(search) => match trigram_freqs(conn).await? {
            Some(freqs) => {
                let (parts, expected) = rare_parts(search, &freqs);
                (parts, Some(expected))
            }
            None => (Vec::new(), None),
        },
        None => (Vec::new(), None),
    };
    let text = match &search {
        None => Text::Any,
        Some(search) if parts.is_empty() => Text::Whole(search),
        Some(search) => Text::Parts(search, &parts),
    };
    let filtered = filter.plan_id.is_some() || filter.status.is_some();
    let walk_first = search.is_some()
        && expected.is_some_and(|share| share * WALK as f32 >= filter.limit as f32);
    if !walk_first {
        let scan = match text {
            Text::Parts(..) => Scan::Found,
            _ => Scan::Planner,
        };
        return fetch(conn, filter, &text, scan, filter.before_pk, filter.limit).await;
    }
    let mut found = Vec::new();
    let mut below = filter.before_pk;
    let mut window = WALK;
    let mut walked = 0;
    for round in 1.. {
        let rest = filter.limit - found.len() as i64;
        found.extend(fetch(conn, filter, &text, Scan::Walk(window), below, rest).await?);
        if found.len() as i64 >= filter.limit {
            return Ok(found);
        }
        // How many customers this walk passed, and where it ended.
        let (passed, floor): (i64, Option<i64>) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT count(*), min(pk) FROM (SELECT pk FROM customers
              WHERE $1::bigint IS NULL OR pk < $1 ORDER BY pk DESC LIMIT {window}) w"
        )))
        .bind(below)
        .fetch_one(&mut *conn)
        .await?;
        let Some(floor) = floor.filter(|_| passed >= window) else {
            return Ok(found);
        };
        below = Some(floor);
        walked += passed;
        // Walk once more if the matches so far say twice what the rest needs is at most
        // WALK_MORE customers (`tanaka-1`: 15 of 21 in the first 5,000).
        let found_so_far = found.len() as i64;
        let more = (filter.limit - found_so_far) * walked * 2 / found_so_far.max(1);
        if round == 2 || found_so_far == 0 || more > WALK_MORE {
            break;
        }
        window = more;
    }
    // Few of the newest matched, so the rest are fetched from the index, not walked (when
    // all the matches are old, walking would read every customer newer than them); a plan
    // or status filter is left to the planner, which may start from the plans, and so is a
    // search too short to have a trigram.
    let scan = match text {
        Text::Whole(search) if filtered || search.chars().count() < 3 => Scan::Planner,
        _ => Scan::Found,
    };
    let rest = filter.limit - found.len() as i64;
    found.extend(fetch(conn, filter, &text, scan, below, rest).await?);
    Ok(found)
}

/// How many of the newest customers a broad search is checked on before the index is asked,
/// and at most how many more when those gave some of the page.
const WALK: i64 = 5000;
const WALK_MORE: i64 = 30_000;

/// What a search asks of the text.
enum Text<'a> {
    Any,
    /// The whole search (lower case), from the index or walked.
    Whole(&'a str),
    /// The rare parts from the index, then the whole search (lower case) checked.
    Parts(&'a str, &'a [&'a str]),
}

/// How the customers are found.
#[derive(Clone, Copy, PartialEq)]
enum Scan {
    /// As the planner sees fit.
    Planner,
    /// The newest this many customers, each checked.
    Walk(i64),
    /// All the matches from the index, then the newest of them: a subquery the planner must
    /// finish before the page is cut. From patterns of three letters it expects thousands of
    /// matches and would otherwise walk the customers newest first hoping to fill the page
    /// early, through all million when one matches.
    Found,
}

/// The newest `limit` customers matching `filter` and `text` created before `before_pk`.
async fn fetch(
    conn: &mut PgConnection,
    filter: &ListFilter<'_>,
    text: &Text<'_>,
    scan: Scan,
    before_pk: Option<i64>,
    limit: i64,
) -> Result<Vec<Listed>, sqlx::Error> {
    const COLUMNS: [&str; 3] = ["lower(c.id)", "lower(c.name)", "lower(c.email)"];
    let arms = |condition: &dyn Fn(&str) -> String| COLUMNS.map(condition).join(" OR ");
    // Each value is bound in the order its `$n` appears here.
    let mut texts: Vec<String> = Vec::new();
    let mut conditions = String::from("true");
    match *text {
        Text::Any => {}
        Text::Whole(search) | Text::Parts(search, _) if matches!(scan, Scan::Walk(_)) => {
            texts.push(search.to_owned());
            conditions += &format!(" AND ({})", arms(&|c| format!("strpos({c}, $1) > 0")));
        }
        Text::Whole(search) => {
            texts.push(like_pattern(search));
            conditions += &format!(" AND ({})", arms(&|c| format!("{c} LIKE $1")));
        }
        Text::Parts(search, parts) => {
            // `strpos` is no operator of the trigram index: the index is asked only for the
            // rare parts, and the whole search is checked on the rows they find.
            texts.push(search.to_owned());
            texts.extend(parts.iter().map(|part| like_pattern(part)));
            let all_parts = |column: &str| {
                let likes: Vec<String> = (2..=texts.len())
                    .map(|n| format!("{column} LIKE ${n}"))
                    .collect();
                format!("({})", likes.join(" AND "))
            };
            conditions += &format!(
                " AND ({}) AND ({})",
                arms(&all_parts),
                arms(&|c| format!("strpos({c}, $1) > 0"))
            );
        }
    }
    let mut next = texts.len() + 1;
    if filter.plan_id.is_some() || filter.status.is_some() {
        // A semi-join the planner may drive from either side: the customers newest first,
        // checking each one's plans, or the plan's holders (customer_plans_plan_idx).
        conditions += " AND EXISTS (SELECT 1 FROM customer_plans p WHERE p.customer_pk = c.pk";
        if filter.plan_id.is_some() {
            conditions += &format!(" AND p.plan_id = ${next}");
            next += 1;
        }
        if filter.status.is_some() {
            conditions += &format!(" AND p.status = ${next}");
            next += 1;
        } else {
            conditions += " AND p.status <> 'expired'";
        }
        conditions += ")";
    }
    // Entities' holders (migration 21) are not customers.
    let mut before = "c.parent_pk IS NULL".to_owned();
    if before_pk.is_some() {
        before += &format!(" AND c.pk < ${next}");
        next += 1;
    }
    let from = match scan {
        Scan::Planner => format!("customers c WHERE {before} AND {conditions}"),
        Scan::Walk(window) => format!(
            "(SELECT c.pk, c.id, c.name, c.email, c.created_at FROM customers c
              WHERE {before} ORDER BY c.pk DESC LIMIT {window}) c
             WHERE {conditions}"
        ),
        Scan::Found => format!(
            "(SELECT c.pk, c.id, c.name, c.email, c.created_at FROM customers c
              WHERE {before} AND {conditions} OFFSET 0) c"
        ),
    };
    let sql = format!(
        "SELECT c.pk, c.id, c.name, c.email, c.created_at,
                coalesce((SELECT json_agg(json_build_array(p.plan_id, p.status) ORDER BY p.plan_id)
                          FROM customer_plans p
                          WHERE p.customer_pk = c.pk AND p.status <> 'expired'), '[]') AS plans
         FROM {from}
         ORDER BY c.pk DESC
         LIMIT ${next}"
    );
    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
    for text in texts {
        query = query.bind(text);
    }
    if let Some(plan_id) = filter.plan_id {
        query = query.bind(plan_id);
    }
    if let Some(status) = filter.status {
        query = query.bind(status);
    }
    if let Some(before_pk) = before_pk {
        query = query.bind(before_pk);
    }
    // Not a prepared statement: planned each time for its own values, since whether the
    // index or the newest-first walk is faster depends on the search (a generic plan would
    // pick one for all).
    query.bind(limit).persistent(false).fetch_all(conn).await
}

/// `%text%` for LIKE, with `\`, `%` and `_` of the text literal.
fn like_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_keep_wildcards_literal() {
        assert_eq!(like_pattern("100%_a\\b"), "%100\\%\\_a\\\\b%");
    }
}
