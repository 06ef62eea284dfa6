//! The operator console: HTML pages under `/console`, rendered on the server (maud), with a
//! small stylesheet and script compiled in ([`assets`]). Reading works without JavaScript.
//!
//! ```text
//! browser ──/console/*──▶ route ──session? (session)──▶ pages: customers, customer, outbox
//!                           │  └─ none: 303 to /console/login (login)
//!                           └─ POST: form (bounded) ─▶ csrf ─▶ actions ─▶ crate::ops
//!                                                     ─▶ 303 + outcome (flash)
//! ```
//!
//! Pages read through [`crate::ops`], the use cases the JSON API calls, and render their
//! typed views ([`crate::views`]), so the console shows what the API says; the outbox pages
//! read the outbox's log. Errors become HTML here, in [`Reply::error`], with the status
//! [`crate::web::error`] gives them. Nothing here imports [`crate::http`].

mod actions;
mod activity;
mod assets;
mod chart;
mod csrf;
mod customer;
mod customer_forms;
mod customers;
mod entities;
mod flash;
mod form;
mod layout;
mod limiter;
mod login;
mod outbox;
mod pretty;
mod session;
mod usage;

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use maud::{Markup, html};

use crate::config::Secret;
use crate::web::{ApiError, BodyLimits, HttpResponse};
use actions::ConsoleAction;
use flash::Outcome;
use form::Form;
use layout::{Section, Shell};
pub(crate) use session::Console;
use session::Session;

/// What the console's pages and forms share.
pub(crate) struct ConsoleState {
    /// What the use cases need (the pool, the catalog, Stripe).
    pub ops: crate::ops::Ctx,
    /// The API token: what an operator signs in with.
    pub api_token: Secret,
    /// How much of a form is read, and for how long.
    pub body_limits: BodyLimits,
    /// Sessions and sign-in limits.
    pub console: Console,
}

/// Routes `/console/...`; `path` is the percent-decoded segments after `console`.
pub(crate) async fn route(
    state: &ConsoleState,
    req: Request<Incoming>,
    path: &[&str],
) -> HttpResponse {
    let method = req.method().clone();
    // Ids in the path are what `/v1` accepts: printable, at most 255 characters.
    if path
        .iter()
        .any(|s| s.chars().count() > 255 || s.chars().any(char::is_control))
    {
        return Reply::error(ApiError::invalid(
            "id",
            "must be 1-255 printable characters",
        ))
        .into_response();
    }
    match (&method, path) {
        (&Method::GET, ["assets", name]) => {
            return assets::serve(name).unwrap_or_else(|| not_found().into_response());
        }
        (&Method::GET, ["login"]) => {
            let outcome = req
                .uri()
                .query()
                .is_some_and(|q| q.contains("signed_out=1"))
                .then(|| Outcome::done("Signed out."));
            return login::form(state, &req, outcome).into_response();
        }
        (&Method::POST, ["login"]) => return login::submit(state, req).await.into_response(),
        _ => {}
    }
    let session = match state.console.session(&state.ops.pool, &req, now()).await {
        Ok(Some(session)) => session,
        Ok(None) => return to_login(&req).into_response(),
        // Whether it was signed out cannot be known: no page rather than a revoked session.
        Err(error) => return Reply::error(error.into()).into_response(),
    };
    let reply = if method == Method::GET {
        pages(state, &req, &session, path).await
    } else if method == Method::POST {
        post(state, req, &session, path).await
    } else {
        Reply::error(ApiError::method_not_allowed(&["GET", "POST"]))
    };
    reply.into_response()
}

/// The pages: reading only.
async fn pages(
    state: &ConsoleState,
    req: &Request<Incoming>,
    session: &Session,
    path: &[&str],
) -> Reply {
    let headers = req.headers();
    let view = View {
        state,
        csrf: csrf::token(&state.console, session),
        outcome: flash::take(&state.console, headers),
    };
    let query = req.uri().query();
    let reply = match path {
        [] | [""] => Reply::redirect("/console/customers"),
        ["customers"] => customers::page(&view, query).await,
        ["customers", id] => customer::page(&view, id, query).await,
        ["outbox"] => outbox::page(&view).await,
        ["events", id] => outbox::event(&view, id).await,
        _ => not_found(),
    };
    if view.outcome.is_some() {
        reply.cookie(flash::clear(headers))
    } else {
        reply
    }
}

/// The forms: the CSRF token first, then the action, then back to a page with its outcome.
async fn post(
    state: &ConsoleState,
    req: Request<Incoming>,
    session: &Session,
    path: &[&str],
) -> Reply {
    let headers = req.headers().clone();
    let form = match Form::read(state, req).await {
        Ok(form) => form,
        Err(error) => return Reply::error(error),
    };
    if !csrf::check(&state.console, session, &form) {
        tracing::warn!("console form refused: missing or wrong CSRF token");
        return Reply::forbidden();
    }
    let (action, back) = match path {
        ["logout"] => return login::logout(state, &headers, session).await,
        ["customers"] => customers::create_action(&form),
        ["customers", id, "attach"] => customer_forms::attach_action(id, &form),
        ["customers", id, "balance"] => customer_forms::balance_action(id, &form),
        ["customers", id, "plans", plan, change] => {
            customer_forms::plan_action(id, plan, change, &form)
        }
        ["events", id, "retry"] => outbox::retry_action(id, &form),
        _ => return not_found(),
    };
    let outcome = match action {
        Ok(action) => action.run(state).await,
        Err(error) => Outcome::failed(error.to_string()),
    };
    let back = match (&outcome.kind, back) {
        // A new customer's page, once it exists.
        (flash::Kind::Done | flash::Kind::Notice, Back::Created(path)) => path,
        (_, Back::Created(_)) => "/console/customers".to_owned(),
        (_, Back::To(path)) => path,
    };
    Reply::redirect(&back).cookie(flash::set(&state.console, &headers, &outcome))
}

/// Where a form goes back to after its action.
enum Back {
    To(String),
    /// The page of what the action created; the list when it failed.
    Created(String),
}

/// What every page gets: the state, the forms' CSRF token, and the outcome of the action
/// that led here.
struct View<'a> {
    pub state: &'a ConsoleState,
    pub csrf: String,
    pub outcome: Option<Outcome>,
}

impl View<'_> {
    fn page(&self, title: &str, section: Section, content: Markup) -> Reply {
        let shell = Shell {
            title,
            section,
            csrf: Some(&self.csrf),
            outcome: self.outcome.as_ref(),
        };
        Reply::html(StatusCode::OK, layout::page(&shell, content))
    }
}

/// A console response: a page or a redirect, with cookies to set.
struct Reply {
    status: StatusCode,
    body: String,
    headers: Vec<(header::HeaderName, String)>,
}

impl Reply {
    fn html(status: StatusCode, markup: Markup) -> Self {
        Self {
            status,
            body: markup.into_string(),
            headers: vec![(header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned())],
        }
    }

    /// A 303 to `location` (a console path).
    fn redirect(location: &str) -> Self {
        Self {
            status: StatusCode::SEE_OTHER,
            body: String::new(),
            headers: vec![(header::LOCATION, location.to_owned())],
        }
    }

    fn cookie(self, set_cookie: String) -> Self {
        self.header(header::SET_COOKIE, &set_cookie)
    }

    fn header(mut self, name: header::HeaderName, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    /// An error as a page: the API's status and message (never an internal cause, which is
    /// logged).
    fn error(error: ApiError) -> Self {
        error.log();
        let status = error.status();
        message(
            status,
            status.canonical_reason().unwrap_or("Error"),
            &error.to_string(),
        )
    }

    /// A form without its CSRF token, or with another session's.
    fn forbidden() -> Self {
        message(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "This form did not come from your console session (its CSRF token is missing or \
             stale). Go back, reload the page and try again.",
        )
    }

    fn into_response(self) -> HttpResponse {
        let mut builder = Response::builder().status(self.status);
        let headers = builder.headers_mut().expect("a fresh builder");
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.append(name, value);
            }
        }
        security_headers(headers);
        builder
            .body(Full::new(Bytes::from(self.body)))
            .expect("valid response parts")
    }
}

/// No framing, no sniffing, no referrer outside, no caching of pages, and only our own
/// scripts and styles (the pages use no inline script or style).
fn security_headers(headers: &mut HeaderMap) {
    let fixed = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}

fn message(status: StatusCode, title: &str, text: &str) -> Reply {
    let shell = Shell {
        title,
        section: Section::None,
        csrf: None,
        outcome: None,
    };
    let body = html! {
        section.panel { div.panel-body {
            h1 { (status.as_u16()) " · " (title) }
            p { (text) }
            p { a href="/console/customers" { "Back to customers" } }
        }}
    };
    Reply::html(status, layout::page(&shell, body))
}

fn not_found() -> Reply {
    message(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such page in the console.",
    )
}

/// To the sign-in page, coming back here afterwards (GET only: a form is not re-posted).
fn to_login(req: &Request<Incoming>) -> Reply {
    let back = match (req.method(), req.uri().path_and_query()) {
        (&Method::GET, Some(pq)) => pq.as_str().to_owned(),
        _ => "/console/customers".to_owned(),
    };
    Reply::redirect(&format!(
        "/console/login?next={}",
        layout::query_value(&back)
    ))
}

/// The connection's address (the server puts it on every request).
fn peer<B>(req: &Request<B>) -> SocketAddr {
    crate::web::peer(req)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The action a form asks for, or why it cannot be one.
type Planned = (Result<ConsoleAction, ApiError>, Back);
