//! Console sessions: a signed cookie, and the signed-out ones in Postgres.
//!
//! The cookie is `{id}.{expires}.{mac}`: a random 128-bit id, the unix second it expires
//! ([`SESSION_TTL`] after sign-in, never extended) and an HMAC-SHA256 of both under a key
//! derived from the API token. So every instance sharing the token accepts it, a restart
//! keeps operators signed in, and rotating the token ends every session. Signing out
//! records the id in `console_revocations` (migration 24) until it would have expired, so
//! every instance, and this one after a restart, refuses a copy of the cookie; expired
//! rows are pruned at each sign-out.
//!
//! The same key signs the CSRF tokens ([`super::csrf`]) and the outcome shown after an
//! action ([`super::flash`]), each under its own purpose so one can never pass as another.

use chrono::DateTime;
use hmac::{Hmac, Mac};
use hyper::Request;
use hyper::header::{self, HeaderMap};
use sha2::Sha256;
use sqlx::PgPool;
use subtle::ConstantTimeEq;

use super::limiter::Limiter;
use crate::config::Secret;

/// How long a session lasts from sign-in.
pub(crate) const SESSION_TTL_SECS: i64 = 8 * 3600;

/// The session cookie's name.
pub(super) const COOKIE: &str = "rc_console";

/// What the console keeps in the process: the signing key and the failed sign-in counts.
pub(crate) struct Console {
    key: [u8; 32],
    pub(super) limiter: Limiter,
}

/// A signed-in operator.
#[derive(Debug, Clone)]
pub(super) struct Session {
    pub id: String,
    pub expires: i64,
}

impl Console {
    pub(crate) fn new(api_token: &Secret) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(api_token.expose().as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(b"stripe-reconciler console key v1");
        Self {
            key: mac.finalize().into_bytes().into(),
            limiter: Limiter::default(),
        }
    }

    /// The MAC of `data` for `purpose`, as hex.
    pub(super) fn sign(&self, purpose: &str, data: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("a 32-byte key");
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(data.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Whether `mac` is `data`'s MAC for `purpose` (constant time).
    pub(super) fn verify(&self, purpose: &str, data: &str, mac: &str) -> bool {
        bool::from(self.sign(purpose, data).as_bytes().ct_eq(mac.as_bytes()))
    }

    /// A new session starting at `now`, and its cookie's value.
    pub(super) fn start(&self, now: i64) -> (Session, String) {
        let session = Session {
            id: random_hex(),
            expires: now + SESSION_TTL_SECS,
        };
        let data = format!("{}.{}", session.id, session.expires);
        let value = format!("{data}.{}", self.sign("session", &data));
        (session, value)
    }

    /// The request's session, if its cookie is ours, unexpired at `now` and not signed out
    /// (on any instance, before or after a restart: `console_revocations`).
    pub(super) async fn session<B>(
        &self,
        pool: &PgPool,
        req: &Request<B>,
        now: i64,
    ) -> Result<Option<Session>, sqlx::Error> {
        let Some(session) = self.signed(req, now) else {
            return Ok(None);
        };
        let revoked: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM console_revocations WHERE session_id = $1)",
        )
        .bind(&session.id)
        .fetch_one(pool)
        .await?;
        Ok((!revoked).then_some(session))
    }

    /// The session the request's cookie signs, if it is ours and unexpired at `now`
    /// (whether it was signed out is [`Console::session`]'s to ask).
    fn signed<B>(&self, req: &Request<B>, now: i64) -> Option<Session> {
        let value = cookie(req.headers(), COOKIE)?;
        let (data, mac) = value.rsplit_once('.')?;
        if !self.verify("session", data, mac) {
            return None;
        }
        let (id, expires) = data.split_once('.')?;
        let expires: i64 = expires.parse().ok()?;
        if expires <= now {
            return None;
        }
        Some(Session {
            id: id.to_owned(),
            expires,
        })
    }
}

/// Signs `session` out everywhere until it expires; drops the records of sessions that have
/// expired anyway (their cookies are refused by their expiry).
pub(super) async fn sign_out(
    pool: &PgPool,
    session: &Session,
    now: i64,
) -> Result<(), sqlx::Error> {
    let expires =
        DateTime::from_timestamp(session.expires, 0).unwrap_or(DateTime::<chrono::Utc>::MAX_UTC);
    let now = DateTime::from_timestamp(now, 0).unwrap_or_default();
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM console_revocations WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO console_revocations (session_id, expires_at) VALUES ($1, $2)
         ON CONFLICT (session_id) DO NOTHING",
    )
    .bind(&session.id)
    .bind(expires)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// 128 random bits as hex.
pub(super) fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS has randomness");
    hex::encode(bytes)
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value: HttpOnly and SameSite=Strict always, Secure when the request came
/// over TLS, for `max_age` seconds (0: delete it).
pub(super) fn set_cookie(
    headers: &HeaderMap,
    name: &str,
    value: &str,
    path: &str,
    max_age: i64,
) -> String {
    let secure = if behind_tls(headers) { "; Secure" } else { "" };
    format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

/// Whether the browser reached us over TLS: the daemon serves plain HTTP, so that is what a
/// TLS-terminating proxy says in `X-Forwarded-Proto` or `Forwarded`. A client that claims it
/// falsely only gets a cookie its own plain-HTTP browser will not send back.
pub(super) fn behind_tls(headers: &HeaderMap) -> bool {
    let forwarded_proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
    let forwarded = headers
        .get(header::FORWARDED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|first| {
            first.split(';').any(|pair| {
                pair.trim()
                    .to_ascii_lowercase()
                    .strip_prefix("proto=")
                    .is_some_and(|p| p.trim_matches('"') == "https")
            })
        });
    forwarded_proto || forwarded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn console() -> Console {
        Console::new(&Secret::new("token-1"))
    }

    fn request(cookie: &str) -> Request<()> {
        Request::builder()
            .header(header::COOKIE, format!("other=1; {COOKIE}={cookie}"))
            .body(())
            .unwrap()
    }

    #[test]
    fn a_session_lasts_until_it_expires() {
        let console = console();
        let (session, value) = console.start(1_000);
        let req = request(&value);
        assert_eq!(console.signed(&req, 1_001).unwrap().id, session.id);
        assert!(console.signed(&req, 1_000 + SESSION_TTL_SECS).is_none());
    }

    #[test]
    fn a_changed_cookie_or_another_token_is_refused() {
        let console = console();
        let (session, value) = console.start(1_000);
        let longer = value.replace(
            &format!(".{}.", session.expires),
            &format!(".{}.", session.expires + 86_400),
        );
        assert_ne!(longer, value);
        assert!(console.signed(&request(&longer), 1_001).is_none());
        let other = Console::new(&Secret::new("token-2"));
        assert!(other.signed(&request(&value), 1_001).is_none());
        assert!(console.signed(&request("garbage"), 1_001).is_none());
        // Another instance with the same token accepts it.
        assert!(
            Console::new(&Secret::new("token-1"))
                .signed(&request(&value), 1_001)
                .is_some()
        );
    }

    #[test]
    fn purposes_do_not_mix() {
        let console = console();
        let mac = console.sign("csrf", "abc");
        assert!(console.verify("csrf", "abc", &mac));
        assert!(!console.verify("session", "abc", &mac));
        assert!(!console.verify("csrf", "abd", &mac));
    }

    #[test]
    fn cookies_are_secure_only_behind_tls() {
        let mut headers = HeaderMap::new();
        let plain = set_cookie(&headers, "a", "b", "/console", 60);
        assert_eq!(
            plain,
            "a=b; Path=/console; Max-Age=60; HttpOnly; SameSite=Strict"
        );
        headers.insert("x-forwarded-proto", "https".parse().unwrap());
        assert!(set_cookie(&headers, "a", "b", "/console", 60).ends_with("; Secure"));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::FORWARDED,
            "for=1.2.3.4;Proto=HTTPS".parse().unwrap(),
        );
        assert!(behind_tls(&headers));
        headers.insert(header::FORWARDED, "for=1.2.3.4;proto=http".parse().unwrap());
        assert!(!behind_tls(&headers));
    }
}
