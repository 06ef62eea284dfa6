//! CSRF tokens: every console form that changes something carries one in the field `csrf`.
//!
//! A signed-in form's token is the MAC of the session id; the sign-in form's is the MAC of a
//! nonce kept in a short-lived cookie of its own (there is no session yet). Stateless: the
//! server recomputes the token. The session cookie is also SameSite=Strict, so another site
//! cannot send it at all; the token is the second lock.

use hyper::header::HeaderMap;

use super::form::Form;
use super::session::{self, Console, Session};

/// The form field.
pub(super) const FIELD: &str = "csrf";

/// The sign-in nonce's cookie (path `/console/login`).
pub(super) const LOGIN_COOKIE: &str = "rc_console_login";

/// The token of a signed-in session's forms.
pub(super) fn token(console: &Console, session: &Session) -> String {
    console.sign("csrf", &session.id)
}

/// Whether the form carries the session's token.
pub(super) fn check(console: &Console, session: &Session, form: &Form) -> bool {
    form.get(FIELD)
        .is_some_and(|t| console.verify("csrf", &session.id, t))
}

/// The sign-in form's token for `nonce`.
pub(super) fn login_token(console: &Console, nonce: &str) -> String {
    console.sign("login-csrf", nonce)
}

/// Whether the sign-in form carries the token of the nonce in its cookie.
pub(super) fn check_login(console: &Console, headers: &HeaderMap, form: &Form) -> bool {
    let Some(nonce) = session::cookie(headers, LOGIN_COOKIE) else {
        return false;
    };
    form.get(FIELD)
        .is_some_and(|t| console.verify("login-csrf", nonce, t))
}
