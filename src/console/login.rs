//! Signing in (the API token, posted as `token`) and out.

use hyper::body::Incoming;
use hyper::{Request, StatusCode, header};
use maud::html;
use subtle::ConstantTimeEq;

use super::ConsoleState;
use super::flash::Outcome;
use super::form::Form;
use super::layout::{self, Section, Shell};
use super::limiter::{Failure, OVERALL};
use super::session::{self, COOKIE, SESSION_TTL_SECS, Session, random_hex};
use super::{Reply, csrf, now, peer};

/// `GET /console/login`: the form, with a fresh sign-in nonce.
pub(super) fn form(
    state: &ConsoleState,
    req: &Request<Incoming>,
    outcome: Option<Outcome>,
) -> Reply {
    let next = next_path(req.uri().query());
    page(state, req.headers(), StatusCode::OK, &next, None, outcome)
}

fn page(
    state: &ConsoleState,
    headers: &header::HeaderMap,
    status: StatusCode,
    next: &str,
    error: Option<&str>,
    outcome: Option<Outcome>,
) -> Reply {
    let nonce = random_hex();
    let token = csrf::login_token(&state.console, &nonce);
    let shell = Shell {
        title: "Sign in",
        section: Section::None,
        csrf: None,
        outcome: outcome.as_ref(),
    };
    let body = html! {
        div.login {
            section.panel { div.panel-body {
                h1 { "Sign in" }
                p { "Use the daemon's API token (" code { "RECONCILER_API_TOKEN" } ")." }
                @if let Some(error) = error {
                    div.banner.failed role="alert" { (error) }
                }
                form method="post" action="/console/login" {
                    (layout::csrf_field(&token))
                    input type="hidden" name="next" value=(next);
                    label { "API token"
                        input type="password" name="token" autocomplete="current-password"
                            required autofocus;
                    }
                    button.primary type="submit" { "Sign in" }
                }
            }}
        }
    };
    Reply::html(status, layout::page(&shell, body)).cookie(session::set_cookie(
        headers,
        csrf::LOGIN_COOKIE,
        &nonce,
        "/console/login",
        3600,
    ))
}

/// `POST /console/login`: a session for the right token; failures are limited per address
/// and logged (with the client's address, never what was typed).
pub(super) async fn submit(state: &ConsoleState, req: Request<Incoming>) -> Reply {
    let address = peer(&req).ip();
    let headers = req.headers().clone();
    let now = now();
    if let Err(wait) = state.console.limiter.check(address, now) {
        tracing::warn!(%address, retry_after_secs = wait, "console sign-in refused: too many failures");
        return page(
            state,
            &headers,
            StatusCode::TOO_MANY_REQUESTS,
            "/console/customers",
            Some(&format!(
                "Too many failed sign-ins. Try again in {wait} seconds."
            )),
            None,
        )
        .header(header::RETRY_AFTER, &wait.to_string());
    }
    let form = match Form::read(state, req).await {
        Ok(form) => form,
        Err(error) => return Reply::error(error),
    };
    if !csrf::check_login(&state.console, &headers, &form) {
        return Reply::forbidden();
    }
    let next = form
        .get("next")
        .filter(|n| safe_next(n))
        .unwrap_or("/console/customers")
        .to_owned();
    let presented = form.get("token").unwrap_or_default().as_bytes();
    let expected = state.api_token.expose().as_bytes();
    if !bool::from(presented.ct_eq(expected)) {
        if state.console.limiter.failed(address, now) == Failure::OverallReached {
            tracing::warn!(
                failures = OVERALL,
                "console sign-ins failing from many addresses this minute (each address is \
                 still limited; none is refused for the others)"
            );
        }
        tracing::warn!(%address, "console sign-in failed: wrong token");
        return page(
            state,
            &headers,
            StatusCode::UNAUTHORIZED,
            &next,
            Some("That is not the API token."),
            None,
        );
    }
    state.console.limiter.succeeded(address);
    let (_, value) = state.console.start(now);
    tracing::info!(%address, "console sign-in");
    Reply::redirect(&next)
        .cookie(session::set_cookie(
            &headers,
            COOKIE,
            &value,
            "/console",
            SESSION_TTL_SECS,
        ))
        .cookie(session::set_cookie(
            &headers,
            csrf::LOGIN_COOKIE,
            "",
            "/console/login",
            0,
        ))
}

/// `POST /console/logout` (its CSRF token checked by the caller): the session is refused
/// everywhere from now on, after restarts too.
pub(super) async fn logout(
    state: &ConsoleState,
    headers: &header::HeaderMap,
    session: &Session,
) -> Reply {
    if let Err(error) = session::sign_out(&state.ops.pool, session, now()).await {
        return Reply::error(error.into());
    }
    tracing::info!("console sign-out");
    Reply::redirect("/console/login?signed_out=1")
        .cookie(session::set_cookie(headers, COOKIE, "", "/console", 0))
}

/// Where to go after signing in: a console path from the query's `next`.
fn next_path(query: Option<&str>) -> String {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "next")
        .map(|(_, v)| v.into_owned())
        .filter(|n| safe_next(n))
        .unwrap_or_else(|| "/console/customers".to_owned())
}

/// Only a path of the console: never another host (`//evil`, `/\evil`) or scheme.
fn safe_next(next: &str) -> bool {
    next.starts_with("/console/")
        && !next.contains("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control)
        && !next.starts_with("/console/login")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_in_the_console() {
        assert!(safe_next("/console/customers/a%2Fb?search=x"));
        for bad in [
            "//evil.test",
            "https://evil.test",
            "/console//evil.test",
            "/console/\\evil",
            "/elsewhere",
            "/console/login",
        ] {
            assert!(!safe_next(bad), "{bad}");
        }
        assert_eq!(next_path(Some("next=%2F%2Fevil")), "/console/customers");
    }
}
