//! A customer's name and email between ours and Stripe's: which of the two is newer, by the
//! second each was made in, and what a tie of one second does.

use sqlx::PgConnection;

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
