//! Customers: get-or-create (with the email claim of pre-created customers), update,
//! delete, and the link to a Stripe customer.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::{Connection, PgConnection};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Customer {
    #[serde(skip)]
    pub pk: i64,
    pub id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub fingerprint: Option<String>,
    pub stripe_id: Option<String>,
    pub metadata: Value,
    #[serde(skip)]
    pub created_at: DateTime<Utc>,
}

/// The fields a caller may set.
#[derive(Debug, Clone, Default)]
pub struct CustomerFields {
    pub name: Option<String>,
    pub email: Option<String>,
    pub fingerprint: Option<String>,
    pub metadata: Option<Value>,
}

const COLUMNS: &str = "pk, id, name, email, fingerprint, stripe_id, metadata, created_at";

macro_rules! returning {
    ($sql:literal) => {
        concat!(
            $sql,
            " RETURNING pk, id, name, email, fingerprint, stripe_id, metadata, created_at"
        )
    };
}

/// The customer matching `condition`, a fixed SQL fragment on the parameter `$1`.
async fn find_one(
    conn: &mut PgConnection,
    condition: &'static str,
    value: &str,
) -> Result<Option<Customer>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM customers WHERE {condition}"
    )))
    .bind(value)
    .fetch_optional(conn)
    .await
}

pub async fn by_id(conn: &mut PgConnection, id: &str) -> Result<Option<Customer>, sqlx::Error> {
    find_one(conn, "id = $1", id).await
}

/// The key of the customer linked to `stripe_id`, else of the one whose id is `our_id`, in
/// one query; true when found by the Stripe id.
pub async fn pk_by_stripe_id_or_id(
    conn: &mut PgConnection,
    stripe_id: Option<&str>,
    our_id: Option<&str>,
) -> Result<Option<(i64, bool)>, sqlx::Error> {
    if stripe_id.is_none() && our_id.is_none() {
        return Ok(None);
    }
    sqlx::query_as(
        "SELECT pk, by_stripe FROM (
             (SELECT pk, true AS by_stripe FROM customers WHERE stripe_id = $1)
             UNION ALL
             (SELECT pk, false FROM customers WHERE id = $2)) AS found
         ORDER BY by_stripe DESC LIMIT 1",
    )
    .bind(stripe_id)
    .bind(our_id)
    .fetch_optional(conn)
    .await
}

pub async fn by_stripe_id(
    conn: &mut PgConnection,
    stripe_id: &str,
) -> Result<Option<Customer>, sqlx::Error> {
    find_one(conn, "stripe_id = $1", stripe_id).await
}

/// The customer with `id`, locked until the transaction ends (a concurrent delete waits,
/// or has won and there is none).
pub async fn lock_by_id(
    conn: &mut PgConnection,
    id: &str,
) -> Result<Option<Customer>, sqlx::Error> {
    find_one(conn, "id = $1 FOR UPDATE", id).await
}

/// Finds the customer with `id`, else claims a pre-created one (no id yet) with the same
/// email, else creates one. Returns the customer and whether it is new; `None` only when
/// concurrent deletes took what it found several times over (the caller answers 409).
///
/// Safe under any concurrency: an email-only call inserts against the unique index on the
/// email of pre-created customers, so concurrent ones end with one customer; a call with an
/// id inserts against the unique id. A step that finds a row a concurrent delete then
/// removes simply looks again. Callers run it in a transaction.
pub async fn get_or_create(
    conn: &mut PgConnection,
    id: Option<&str>,
    fields: &CustomerFields,
) -> Result<Option<(Customer, bool)>, sqlx::Error> {
    const ATTEMPTS: usize = 5;
    for _ in 0..ATTEMPTS {
        let found = match id {
            None => by_email_or_create(conn, fields).await?,
            Some(id) => by_id_or_create(conn, id, fields).await?,
        };
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// Email only: the pre-created customer with this email, else a new one.
async fn by_email_or_create(
    conn: &mut PgConnection,
    fields: &CustomerFields,
) -> Result<Option<(Customer, bool)>, sqlx::Error> {
    let created: Option<Customer> = sqlx::query_as(returning!(
        "INSERT INTO customers (id, name, email, fingerprint, metadata)
         VALUES (NULL, $1, $2, $3, coalesce($4, '{}'::jsonb))
         ON CONFLICT (lower(email)) WHERE id IS NULL DO NOTHING"
    ))
    .bind(&fields.name)
    .bind(&fields.email)
    .bind(&fields.fingerprint)
    .bind(&fields.metadata)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(customer) = created {
        return Ok(Some((customer, true)));
    }
    // Another call created it (this statement sees its commit), unless it was claimed or
    // deleted since: then the caller looks again.
    let email = fields.email.as_deref().unwrap_or_default();
    let existing = find_one(conn, "id IS NULL AND lower(email) = lower($1)", email).await?;
    Ok(existing.map(|c| (c, false)))
}

/// The customer with `id` (refreshed), else a pre-created one claimed by email, else new.
async fn by_id_or_create(
    conn: &mut PgConnection,
    id: &str,
    fields: &CustomerFields,
) -> Result<Option<(Customer, bool)>, sqlx::Error> {
    if let Some(existing) = by_id(conn, id).await? {
        return Ok(refresh(conn, existing.pk, fields)
            .await?
            .map(|c| (c, false)));
    }
    if let Some(email) = fields.email.as_deref() {
        let claimed: Option<Customer> = sqlx::query_as(returning!(
            "UPDATE customers SET id = $1, updated_at = now(),
                    name = coalesce($3, name), fingerprint = coalesce($4, fingerprint),
                    metadata = coalesce($5, metadata)
             WHERE pk = (SELECT pk FROM customers
                         WHERE id IS NULL AND lower(email) = lower($2)
                         FOR UPDATE SKIP LOCKED)"
        ))
        .bind(id)
        .bind(email)
        .bind(&fields.name)
        .bind(&fields.fingerprint)
        .bind(&fields.metadata)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(customer) = claimed {
            return Ok(Some((customer, false)));
        }
    }
    let created: Option<Customer> = sqlx::query_as(returning!(
        "INSERT INTO customers (id, name, email, fingerprint, metadata)
         VALUES ($1, $2, $3, $4, coalesce($5, '{}'::jsonb))
         ON CONFLICT (id) DO NOTHING"
    ))
    .bind(id)
    .bind(&fields.name)
    .bind(&fields.email)
    .bind(&fields.fingerprint)
    .bind(&fields.metadata)
    .fetch_optional(&mut *conn)
    .await?;
    match created {
        Some(customer) => Ok(Some((customer, true))),
        // A concurrent call created it first (unless it was deleted again since).
        None => Ok(by_id(conn, id).await?.map(|c| (c, false))),
    }
}

/// Sets the given fields (absent ones stay as they are); `None` if the customer is gone.
async fn refresh(
    conn: &mut PgConnection,
    pk: i64,
    fields: &CustomerFields,
) -> Result<Option<Customer>, sqlx::Error> {
    sqlx::query_as(returning!(
        "UPDATE customers SET name = coalesce($2, name), email = coalesce($3, email),
                fingerprint = coalesce($4, fingerprint), metadata = coalesce($5, metadata),
                updated_at = now()
         WHERE pk = $1"
    ))
    .bind(pk)
    .bind(&fields.name)
    .bind(&fields.email)
    .bind(&fields.fingerprint)
    .bind(&fields.metadata)
    .fetch_optional(conn)
    .await
}

/// Updates name, email and metadata of the customer with `id`; `None` if there is none
/// (also when a concurrent delete wins).
pub async fn update(
    conn: &mut PgConnection,
    id: &str,
    fields: &CustomerFields,
) -> Result<Option<Customer>, sqlx::Error> {
    match by_id(conn, id).await? {
        Some(customer) => refresh(conn, customer.pk, fields).await,
        None => Ok(None),
    }
}

/// Deletes our customer and everything of theirs in our store (never anything in Stripe).
pub async fn delete(conn: &mut PgConnection, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM customers WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Unlinks every customer of ours from `stripe_id` (the Stripe customer was deleted): the
/// next Stripe customer made for it is a new one (`stripe_generation` moves on). Returns the
/// customer unlinked, if any.
pub async fn unlink_stripe(
    conn: &mut PgConnection,
    stripe_id: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE customers SET stripe_id = NULL, stripe_generation = stripe_generation + 1,
                updated_at = now()
         WHERE stripe_id = $1 RETURNING pk",
    )
    .bind(stripe_id)
    .fetch_optional(conn)
    .await
}

/// The longest name and email ours hold, in characters (the API's own bounds).
pub const MAX_NAME_CHARS: usize = 255;
pub const MAX_EMAIL_CHARS: usize = 320;

/// What [`sync_from_stripe`] did with a name and email from Stripe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactSync {
    Applied,
    /// Older than what ours has (a newer Stripe event, or our own change after it).
    Stale,
    /// From the second of our own change, or of another Stripe event that said something
    /// else: which came last is unknown; read the Stripe customer (after our push).
    Tied,
}

/// Copies a name and email changed in Stripe into ours, unless a newer Stripe event was
/// copied already or ours was changed since ([`mark_contact_local`]). Stripe allows longer
/// ones than our API: a name is cut to [`MAX_NAME_CHARS`]; an email over
/// [`MAX_EMAIL_CHARS`] (no address) is not copied. `read`: a read of the Stripe customer made
/// after our push, copied also over a change of ours or an event from the same second.
///
/// An event from the second of the state there that says something else is, with
/// `defer_ties` (Stripe can be read), [`ContactSync::Tied`]: a change of ours, or another
/// Stripe event of that second (which of the two Stripe made last, the payloads do not say).
pub async fn sync_from_stripe(
    conn: &mut PgConnection,
    pk: i64,
    name: Option<&str>,
    email: Option<&str>,
    event_created: i64,
    read: bool,
    defer_ties: bool,
) -> Result<ContactSync, sqlx::Error> {
    let name = name.map(cut_name);
    let email_fits = email.is_none_or(|e| e.chars().count() <= MAX_EMAIL_CHARS);
    let (applied, tied): (Option<bool>, bool) = sqlx::query_as(
        "WITH before AS (
             SELECT stripe_synced_created, contact_local, contact_digest FROM customers WHERE pk = $1),
         up AS (
             UPDATE customers SET name = $2, email = CASE WHEN $5 THEN $3 ELSE email END,
                    stripe_synced_created = greatest(stripe_synced_created, $4),
                    contact_local = false, contact_digest = $7, updated_at = now()
             WHERE pk = $1
               AND (stripe_synced_created < $4
                    OR (stripe_synced_created = $4
                        AND ($6 OR (NOT contact_local
                                    AND NOT ($8 AND contact_digest IS DISTINCT FROM $7)))))
             RETURNING true)
         SELECT (SELECT * FROM up),
                EXISTS (SELECT 1 FROM before
                        WHERE stripe_synced_created = $4
                          AND (contact_local OR ($8 AND contact_digest IS DISTINCT FROM $7)))",
    )
    .bind(pk)
    .bind(name)
    .bind(email)
    .bind(event_created)
    .bind(email_fits)
    .bind(read)
    .bind(contact_digest(name, email))
    .bind(defer_ties && !read)
    .fetch_one(conn)
    .await?;
    Ok(match (applied, tied) {
        (Some(_), _) => ContactSync::Applied,
        (None, true) => ContactSync::Tied,
        (None, false) => ContactSync::Stale,
    })
}

/// A name from Stripe as ours keeps it: cut to [`MAX_NAME_CHARS`].
fn cut_name(name: &str) -> &str {
    match name.char_indices().nth(MAX_NAME_CHARS) {
        Some((cut, _)) => &name[..cut],
        None => name,
    }
}

/// A Stripe customer's name and email as [`sync_from_stripe`] compares them, hashed.
pub fn contact_digest(name: Option<&str>, email: Option<&str>) -> String {
    use sha2::Digest;
    let name = name.map(cut_name);
    let state = format!("{name:?}|{email:?}");
    hex::encode(&sha2::Sha256::digest(state.as_bytes())[..12])
}

/// Our own change of a linked customer's name or email, made now: a Stripe event from an
/// earlier second is older and is not copied over it (see [`sync_from_stripe`]).
pub async fn mark_contact_local(conn: &mut PgConnection, pk: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE customers
         SET stripe_synced_created = greatest(stripe_synced_created,
                                              floor(extract(epoch FROM now()))::bigint),
             contact_local = true
         WHERE pk = $1",
    )
    .bind(pk)
    .execute(conn)
    .await?;
    Ok(())
}

/// How many times the customer was unlinked from a deleted Stripe customer.
pub async fn stripe_generation(conn: &mut PgConnection, pk: i64) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar("SELECT stripe_generation FROM customers WHERE pk = $1")
        .bind(pk)
        .fetch_optional(conn)
        .await
        .map(Option::unwrap_or_default)
}

/// How the reason of an event skipped for want of a linked customer begins: linking that
/// customer re-applies such events ([`link_stripe`]).
pub const UNKNOWN_CUSTOMER: &str = "unknown Stripe customer";

/// Links a Stripe customer to ours if ours has none yet. False if another link exists,
/// also one a concurrent transaction made (the unique violation is caught in a savepoint, so
/// the caller's transaction goes on). Events of that Stripe customer skipped for want of the
/// link are queued again in the same transaction, wherever the link is written.
pub async fn link_stripe(
    conn: &mut PgConnection,
    pk: i64,
    stripe_id: &str,
) -> Result<bool, sqlx::Error> {
    let mut savepoint = conn.begin().await?;
    let done = sqlx::query(
        "UPDATE customers SET stripe_id = $2, updated_at = now()
         WHERE pk = $1 AND (stripe_id IS NULL OR stripe_id = $2)
           AND NOT EXISTS (SELECT 1 FROM customers WHERE stripe_id = $2 AND pk <> $1)",
    )
    .bind(pk)
    .bind(stripe_id)
    .execute(&mut *savepoint)
    .await;
    match done {
        Ok(done) if done.rows_affected() == 1 => {
            // What was skipped for want of this link applies now, after the event that
            // linked it (in `created` order among themselves).
            outbox::queue::requeue_skipped(&mut savepoint, stripe_id, UNKNOWN_CUSTOMER).await?;
            savepoint.commit().await?;
            Ok(true)
        }
        Ok(_) => {
            savepoint.commit().await?;
            Ok(false)
        }
        Err(error) if is_unique_violation(&error) => {
            savepoint.rollback().await?;
            Ok(false)
        }
        Err(error) => Err(error),
    }
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|e| e.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

pub async fn by_pk(conn: &mut PgConnection, pk: i64) -> Result<Option<Customer>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM customers WHERE pk = $1"
    )))
    .bind(pk)
    .fetch_optional(conn)
    .await
}

/// Customers linked to Stripe, optionally only the one with `id`.
pub async fn linked(
    conn: &mut PgConnection,
    id: Option<&str>,
) -> Result<Vec<Customer>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM customers
         WHERE stripe_id IS NOT NULL AND ($1::text IS NULL OR id = $1) ORDER BY pk"
    )))
    .bind(id)
    .fetch_all(conn)
    .await
}

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

/// How common trigrams are among the customers: the share of customers whose id, name or
/// email has it, as ANALYZE last measured (migration 14's statistics object).
#[derive(Debug, Default)]
struct TrigramFreqs {
    freqs: std::collections::HashMap<String, f32>,
    /// Trigrams ANALYZE did not keep are rarer than the rarest it kept.
    untracked: f32,
}

impl TrigramFreqs {
    fn of(&self, trigram: &str) -> f32 {
        self.freqs.get(trigram).copied().unwrap_or(self.untracked)
    }
}

/// The statistics change only with ANALYZE: read them again every few minutes.
const FREQS_FOR: std::time::Duration = std::time::Duration::from_secs(300);

type CachedFreqs = Option<(std::time::Instant, std::sync::Arc<TrigramFreqs>)>;
static FREQS: std::sync::Mutex<CachedFreqs> = std::sync::Mutex::new(None);

/// The trigram frequencies, `None` before the first ANALYZE (then a search is looked up
/// whole, and the statistics are asked again next time). Cached per process: stale ones,
/// or another database's (tests), only change speed, never results.
async fn trigram_freqs(
    conn: &mut PgConnection,
) -> Result<Option<std::sync::Arc<TrigramFreqs>>, sqlx::Error> {
    if let Some((at, freqs)) = &*FREQS.lock().unwrap_or_else(|e| e.into_inner())
        && at.elapsed() < FREQS_FOR
    {
        return Ok(Some(freqs.clone()));
    }
    type Elems = (Option<Vec<String>>, Option<Vec<f32>>);
    let row: Option<Elems> = sqlx::query_as(
        "SELECT most_common_elems::text::text[], most_common_elem_freqs
         FROM pg_stats_ext_exprs
         WHERE statistics_name = 'customers_search_trgm_stats'
           AND statistics_schemaname = current_schema()",
    )
    .fetch_optional(conn)
    .await?;
    let freqs = match row {
        Some((Some(elems), Some(freqs))) if freqs.len() == elems.len() + 3 => {
            // After one frequency per element: the least and greatest of them, and nulls.
            let untracked = freqs[elems.len()] / 2.0;
            let freqs = elems.into_iter().zip(freqs).collect();
            Some(std::sync::Arc::new(TrigramFreqs { freqs, untracked }))
        }
        _ => None,
    };
    if let Some(freqs) = &freqs {
        *FREQS.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((std::time::Instant::now(), freqs.clone()));
    }
    Ok(freqs)
}

/// A trigram in more than this share of the customers is never asked of the index: its
/// posting list is long and narrows little.
const COMMON: f32 = 0.5;
/// The search is looked up by rare parts only when they are expected to match at most this
/// share of the customers; else the index is asked for the whole search (after the walk,
/// which such a search usually fills).
const RARE_ENOUGH: f32 = 0.01;
/// At most this many parts, and this many of one word...
const MAX_PARTS: usize = 4;
const PER_WORD: usize = 3;
/// ...where a word's second and third part must narrow to this share of the customers.
const EXTRA: f32 = 0.1;

/// Three-character substrings of `search` (lower case) whose trigrams are rare, for the
/// index to look up instead of the whole search, and the share of customers the search is
/// expected to match (1 when nothing is known); no parts when there are none or they would
/// match many customers. Every part is a substring of the search, so whatever contains the
/// search contains every part: the choice changes speed, never results.
///
/// pg_trgm splits text into words at every character that is not a letter or digit, and
/// pads each word (`"  ab"`, `"ab "`). Of `search`, a part `abc` (all letters or digits)
/// stands for the trigram `abc`, `-ab` for `"  a"` and `" ab"` (a word starts), `ab-` for
/// `"ab "` (a word ends). Other parts and non-ASCII text are not used. Parts in different
/// words of the search are taken to narrow independently; parts of one word may be mostly
/// the same customers (`kow`, `owa`), so the expected share is that of the word's rarest
/// part, multiplied across words.
fn rare_parts<'s>(search: &'s str, freqs: &TrigramFreqs) -> (Vec<&'s str>, f32) {
    let bytes = search.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || !b.is_ascii();
    // The word each byte is in: words are counted by the separators before them.
    let mut word_of = Vec::with_capacity(bytes.len());
    let mut words = 0;
    for &b in bytes {
        if !word(b) {
            words += 1;
        }
        word_of.push(words);
    }
    // (start, word, share of customers it narrows to)
    let mut candidates: Vec<(usize, usize, f32)> = Vec::new();
    for start in 0..bytes.len().saturating_sub(2) {
        let w = &bytes[start..start + 3];
        if !w.is_ascii() {
            continue;
        }
        let alnum = |i: usize| w[i].is_ascii_alphanumeric();
        let (c0, c1, c2) = (w[0] as char, w[1] as char, w[2] as char);
        let (trigrams, in_word) = match (alnum(0), alnum(1), alnum(2)) {
            (true, true, true) => (vec![format!("{c0}{c1}{c2}")], start),
            (false, true, true) => (vec![format!("  {c1}"), format!(" {c1}{c2}")], start + 1),
            (true, true, false) => (vec![format!("{c0}{c1} ")], start),
            _ => continue,
        };
        let shares: Vec<f32> = trigrams.iter().map(|t| freqs.of(t)).collect();
        if shares.iter().any(|&share| share > COMMON) {
            continue;
        }
        let narrows = shares.into_iter().fold(1.0, f32::min);
        candidates.push((start, word_of[in_word], narrows));
    }
    candidates.sort_by(|a, b| a.2.total_cmp(&b.2).then(a.0.cmp(&b.0)));
    // Per word its rarest part, then (if rare too) the next rarest, and once more: `991`
    // and `919` of `9919` are far fewer customers together than either alone.
    let mut chosen: Vec<(usize, usize, f32)> = Vec::new();
    for round in 0..PER_WORD {
        for &(start, word, narrows) in &candidates {
            let same_word: Vec<usize> =
                chosen.iter().filter(|c| c.1 == word).map(|c| c.0).collect();
            let again = chosen
                .iter()
                .any(|c| bytes[c.0..c.0 + 3] == bytes[start..start + 3]);
            if same_word.len() == round && (round == 0 || narrows <= EXTRA) && !again {
                chosen.push((start, word, narrows));
            }
        }
    }
    chosen.truncate(MAX_PARTS);
    let mut expected = 1.0;
    for (i, &(_, word, narrows)) in chosen.iter().enumerate() {
        if !chosen[..i].iter().any(|c| c.1 == word) {
            expected *= narrows;
        }
    }
    if chosen.is_empty() || expected > RARE_ENOUGH {
        return (Vec::new(), expected);
    }
    let parts = chosen
        .into_iter()
        .map(|(start, _, _)| &search[start..start + 3])
        .collect();
    (parts, expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frequencies shaped like the bench's million customers: `user_N`, `customerN@`.
    fn freqs() -> TrigramFreqs {
        let common = [
            ("use", 1.0),
            ("ser", 1.0),
            ("er ", 1.0),
            ("cus", 1.0),
            ("ust", 1.0),
            ("sto", 1.0),
            ("tom", 1.0),
            ("ome", 1.0),
            ("mer", 1.0),
            ("er1", 0.11),
            ("  1", 0.21),
            (" 12", 0.022),
            ("  4", 0.21),
            (" 42", 0.021),
            ("kow", 0.05),
            ("owa", 0.05),
            ("wal", 0.05),
            ("als", 0.05),
            ("lsk", 0.05),
            ("ski", 0.05),
            ("ki ", 0.05),
        ];
        TrigramFreqs {
            freqs: common.iter().map(|&(t, f)| (t.to_owned(), f)).collect(),
            untracked: 0.0025,
        }
    }

    #[test]
    fn rare_parts_skip_common_trigrams() {
        let parts = rare_parts("user_123456", &freqs()).0;
        assert_eq!(parts, ["123", "234", "345"]);
        let parts = rare_parts("customer123456@", &freqs()).0;
        assert!(
            parts
                .iter()
                .all(|p| !["cus", "ust", "tom", "mer"].contains(p)),
            "{parts:?}"
        );
        assert!(!parts.is_empty());
    }

    #[test]
    fn rare_parts_span_words() {
        // `-42` stands for `" 42"` (a word starts), rarer than any part of `kowalski`.
        let parts = rare_parts("kowalski-42", &freqs()).0;
        assert_eq!(parts[0], "-42");
        assert!(parts.contains(&"kow"), "{parts:?}");
    }

    #[test]
    fn broad_or_short_searches_have_no_rare_parts() {
        assert!(rare_parts("kowalski", &freqs()).0.is_empty(), "5% match");
        assert!(rare_parts("user_1", &freqs()).0.is_empty());
        assert!(rare_parts("ab", &freqs()).0.is_empty());
        assert!(rare_parts("ééé", &freqs()).0.is_empty());
        assert!(rare_parts("", &freqs()).0.is_empty());
    }

    #[test]
    fn a_part_is_asked_once() {
        let parts = rare_parts("nobody_9999", &freqs()).0;
        let mut unique = parts.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), parts.len(), "{parts:?}");
    }

    #[test]
    fn rare_parts_are_substrings_of_the_search() {
        for search in ["a_b%c\\d-123_x", "zürich-9876", "x@y.test 42"] {
            for part in rare_parts(search, &freqs()).0 {
                assert!(search.contains(part), "{search}: {part}");
            }
        }
    }

    #[test]
    fn like_patterns_keep_wildcards_literal() {
        assert_eq!(like_pattern("100%_a\\b"), "%100\\%\\_a\\\\b%");
    }
}
