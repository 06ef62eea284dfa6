//! The operator console over HTTP: sign-in, sessions, redirects, CSRF, the sign-in limit,
//! the actions' outcomes, and that no page shows a secret. (The browser test is
//! `console_browser.rs`.)

use std::collections::HashMap;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderMap};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use crate::daemon::Daemon;
use crate::helpers::*;
use crate::stripe_side::{World, assert_came, new_events, settle, stored_events, stored_ids};

/// A page as a browser would get it: status, headers, body.
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .map_or("", |v| v.to_str().unwrap())
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// The value of the first `<input name=NAME value=...>`.
    pub fn field(&self, name: &str) -> Option<String> {
        let at = self.body.find(&format!("name=\"{name}\""))?;
        let tag_start = self.body[..at].rfind('<')?;
        let tag_end = at + self.body[at..].find('>')?;
        let tag = &self.body[tag_start..tag_end];
        let value = tag.split("value=\"").nth(1)?.split('"').next()?;
        Some(value.to_owned())
    }
}

/// A browser-like client of the console: keeps cookies, follows no redirects.
pub struct ConsoleClient {
    base: String,
    client: stripe_reconciler::cli::HttpClient,
    cookies: HashMap<String, String>,
    extra: Vec<(&'static str, String)>,
}

impl ConsoleClient {
    pub fn new(app: &TestApp) -> Self {
        Self {
            base: app.url(""),
            client: Client::builder(TokioExecutor::new()).build_http(),
            cookies: HashMap::new(),
            extra: Vec::new(),
        }
    }

    /// A client connecting from `local` (a loopback address such as 127.0.0.2: the console
    /// counts failed sign-ins by the connection's address).
    pub fn from_address(app: &TestApp, local: std::net::IpAddr) -> Self {
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_local_address(Some(local));
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            ..Self::new(app)
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        self.send(Method::GET, path, None).await
    }

    pub async fn post_owned(&mut self, path: &str, fields: Vec<(&str, String)>) -> Page {
        let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.post(path, &refs).await
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.send(Method::POST, path, Some(body)).await
    }

    async fn send(&mut self, method: Method, path: &str, body: Option<String>) -> Page {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req = req.header(header::COOKIE, jar.join("; "));
        }
        for (name, value) in &self.extra {
            req = req.header(*name, value);
        }
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .unwrap();
        let response = self.client.request(req).await.expect("request sent");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let page = Page {
            status,
            headers,
            body: String::from_utf8(body.to_vec()).unwrap(),
        };
        for cookie in page.set_cookies() {
            let pair = cookie.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || cookie.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        page
    }

    /// Signs in with `token`; returns the answer to the POST.
    pub async fn sign_in_with(&mut self, token: &str) -> Page {
        let form = self.get("/console/login").await;
        let csrf = form
            .field("csrf")
            .expect("the sign-in form has a CSRF token");
        self.post(
            "/console/login",
            &[
                ("csrf", &csrf),
                ("token", token),
                ("next", "/console/customers"),
            ],
        )
        .await
    }

    pub async fn sign_in(&mut self) -> Page {
        let answer = self.sign_in_with(API_TOKEN).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        answer
    }

    /// The CSRF token of the forms on `path`.
    pub async fn csrf(&mut self, path: &str) -> String {
        let page = self.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        page.field("csrf").expect("the page has forms")
    }

    pub fn cookie(&self, name: &str) -> Option<&String> {
        self.cookies.get(name)
    }
}

#[tokio::test]
async fn without_a_session_every_console_page_redirects_to_the_login() {
    let app = TestApp::spawn().await;
    let mut console = ConsoleClient::new(&app);
    for path in [
        "/console",
        "/console/customers?search=ada",
        "/console/customers/u_1",
        "/console/outbox",
        "/console/events/evt_1",
    ] {
        let page = console.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        let back = form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>();
        assert_eq!(
            page.location(),
            format!("/console/login?next={back}"),
            "{path}"
        );
    }
    let post = console.post("/console/customers", &[("id", "u_x")]).await;
    assert_eq!(post.status, StatusCode::SEE_OTHER);
    assert!(post.location().starts_with("/console/login"));
    assert_eq!(app.count("SELECT count(*) FROM customers").await, 0);

    let login = console.get("/console/login").await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.body.contains("name=\"token\""));
    // The assets need no session (they hold nothing private).
    assert_eq!(
        console.get("/console/assets/console.css").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn signing_in_sets_a_strict_http_only_expiring_cookie_and_signing_out_ends_it() {
    let app = TestApp::spawn().await;
    let mut console = ConsoleClient::new(&app);
    let wrong = console.sign_in_with("not-the-token").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("That is not the API token."));
    assert!(console.cookie("rc_console").is_none());

    let answer = console.sign_in().await;
    assert_eq!(answer.location(), "/console/customers");
    let session = answer
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("rc_console="))
        .expect("a session cookie");
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
        "Max-Age=28800",
    ] {
        assert!(session.contains(attribute), "{attribute} in {session}");
    }
    assert!(!session.contains("Secure"), "plain HTTP: {session}");
    let page = console.get("/console/customers").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Create customer"));
    let stolen = console.cookie("rc_console").unwrap().clone();

    // Behind a TLS-terminating proxy the cookie is Secure.
    let mut tls = ConsoleClient::new(&app);
    tls.extra.push(("x-forwarded-proto", "https".to_owned()));
    let answer = tls.sign_in().await;
    assert!(
        answer
            .set_cookies()
            .iter()
            .any(|c| c.starts_with("rc_console=") && c.ends_with("; Secure")),
        "{:?}",
        answer.set_cookies()
    );

    // A tampered cookie is no session.
    let mut forged = ConsoleClient::new(&app);
    forged
        .cookies
        .insert("rc_console".to_owned(), stolen.replacen('.', "0.", 1));
    assert_eq!(
        forged.get("/console/customers").await.status,
        StatusCode::SEE_OTHER
    );

    let csrf = console.csrf("/console/customers").await;
    let out = console.post("/console/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), "/console/login?signed_out=1");
    assert!(
        console.cookie("rc_console").is_none(),
        "the cookie is cleared"
    );
    // Even a copy of the cookie kept from before is signed out.
    let mut copy = ConsoleClient::new(&app);
    copy.cookies.insert("rc_console".to_owned(), stolen);
    assert_eq!(
        copy.get("/console/customers").await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn a_form_without_its_csrf_token_is_refused_with_403() {
    let app = TestApp::spawn().await;
    let mut console = ConsoleClient::new(&app);
    console.sign_in().await;
    let mut other = ConsoleClient::new(&app);
    other.sign_in().await;
    let others_token = other.csrf("/console/customers").await;

    for fields in [
        vec![("id", "u_csrf")],
        vec![("id", "u_csrf"), ("csrf", "")],
        vec![("id", "u_csrf"), ("csrf", others_token.as_str())],
    ] {
        let page = console.post("/console/customers", &fields).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{fields:?}");
        assert!(page.body.contains("CSRF"));
    }
    for path in [
        "/console/logout",
        "/console/customers/u_csrf/balance",
        "/console/customers/u_csrf/attach",
        "/console/customers/u_csrf/plans/pro/cancel",
        "/console/events/evt_1/retry",
    ] {
        let page = console.post(path, &[("amount", "1")]).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(app.count("SELECT count(*) FROM customers").await, 0);
    // The sign-in form has one too.
    let mut fresh = ConsoleClient::new(&app);
    let page = fresh.post("/console/login", &[("token", API_TOKEN)]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(fresh.cookie("rc_console").is_none());

    let csrf = console.csrf("/console/customers").await;
    let created = console
        .post("/console/customers", &[("csrf", &csrf), ("id", "u_csrf")])
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER);
    assert_eq!(created.location(), "/console/customers/u_csrf");
    assert_eq!(app.count("SELECT count(*) FROM customers").await, 1);
}

#[tokio::test]
async fn failed_sign_ins_are_limited_per_address() {
    let app = TestApp::spawn().await;
    let mut console = ConsoleClient::new(&app);
    for _ in 0..5 {
        let page = console.sign_in_with("guess").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    // Even the right token waits now.
    let page = console.sign_in_with(API_TOKEN).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = page.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(page.body.contains("Too many failed sign-ins"));
    assert!(console.cookie("rc_console").is_none());
}

#[tokio::test]
async fn a_signed_out_session_stays_signed_out_after_a_restart() {
    // Issue 24, defect 12: signing out was forgotten by a restart, and the cookie worked again.
    let first = TestApp::spawn().await;
    let mut out = ConsoleClient::new(&first);
    out.sign_in().await;
    let signed_out = out.cookie("rc_console").unwrap().clone();
    let mut kept = ConsoleClient::new(&first);
    kept.sign_in().await;
    let csrf = out.csrf("/console/customers").await;
    let page = out.post("/console/logout", &[("csrf", &csrf)]).await;
    assert_eq!(page.location(), "/console/login?signed_out=1");
    first.shutdown.cancel();
    first.handle.await.unwrap().unwrap();

    let settings = test_settings(&first.database_url);
    let pool = stripe_reconciler::db::pool(&settings).unwrap();
    let second = TestApp::start_with(settings, pool, first.database_url.clone(), None).await;
    let mut copy = ConsoleClient::new(&second);
    copy.cookies.insert("rc_console".to_owned(), signed_out);
    let page = copy.get("/console/customers").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(page.location().starts_with("/console/login"));
    // A session not signed out outlives the restart.
    let mut moved = ConsoleClient::new(&second);
    moved.cookies = kept.cookies.clone();
    assert_eq!(moved.get("/console/customers").await.status, StatusCode::OK);
    let revocations = second
        .count("SELECT count(*) FROM console_revocations WHERE expires_at > now()")
        .await;
    assert_eq!(revocations, 1);
}

#[tokio::test]
async fn failed_sign_ins_from_many_addresses_do_not_lock_out_another() {
    // Issue 24, defect 12: 50 failures a minute from any addresses locked every operator out.
    let app = TestApp::spawn().await;
    let mut failures = 0;
    for host in 2..=13u8 {
        let mut guesser = ConsoleClient::from_address(&app, [127, 0, 0, host].into());
        for _ in 0..5 {
            let page = guesser.sign_in_with("guess").await;
            assert_eq!(page.status, StatusCode::UNAUTHORIZED, "127.0.0.{host}");
            failures += 1;
        }
        // Each address is still limited on its own.
        let page = guesser.sign_in_with("guess").await;
        assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "127.0.0.{host}");
    }
    assert_eq!(failures, 60);
    let mut operator = ConsoleClient::from_address(&app, [127, 0, 0, 100].into());
    let page = operator.sign_in_with(API_TOKEN).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(operator.cookie("rc_console").is_some());
    assert_eq!(
        operator.get("/console/customers").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_failed_sign_in_is_logged_without_what_was_typed() {
    let database_url = fresh_database().await;
    let daemon = Daemon::spawn(&database_url, &[]);
    let client: stripe_reconciler::cli::HttpClient =
        Client::builder(TokioExecutor::new()).build_http();
    let login = client
        .request(
            Request::get(daemon.url("/console/login"))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    let nonce = login.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = String::from_utf8(
        login
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    let page = Page {
        status: StatusCode::OK,
        headers: HeaderMap::new(),
        body: html,
    };
    let csrf = page.field("csrf").unwrap();
    let typed = "typed-guess-7c1d";
    let mut answers = Vec::new();
    for token in [typed, API_TOKEN] {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("csrf", csrf.as_str()), ("token", token)])
            .finish();
        let req = Request::post(daemon.url("/console/login"))
            .header(header::COOKIE, &nonce)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        answers.push(client.request(req).await.unwrap());
    }
    // The wrong token is refused; the right one signs in (a session cookie, off to the
    // console).
    assert_eq!(answers[0].status(), StatusCode::UNAUTHORIZED);
    assert_eq!(answers[1].status(), StatusCode::SEE_OTHER);
    assert!(
        answers[1].headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/console"),
    );
    assert!(
        answers[1]
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("rc_console=")),
        "a session cookie"
    );
    daemon.terminate();
    let exited = daemon.wait().await;
    let all = exited.stderr.join("\n");
    assert!(all.contains("console sign-in failed"), "{all}");
    assert!(
        exited.stderr.iter().any(|l| l.contains("console sign-in")
            && !l.contains("failed")
            && !l.contains("refused")),
        "the sign-in with the right token is logged: {all}"
    );
    for secret in [typed, API_TOKEN, SECRET_OLD, SECRET_NEW] {
        assert!(!all.contains(secret), "{secret} in the logs");
    }
}

#[tokio::test]
async fn no_page_shows_the_api_token_or_the_webhook_secrets() {
    let app = TestApp::spawn().await;
    app.create_customer(json!({"id": "u_leak", "name": "Leak Test", "email": "l@x.test"}))
        .await;
    app.post_event(&event("evt_leak", "invoice.paid", "cus_leak"))
        .await;
    app.engine.run_until_idle().await.unwrap();
    let mut console = ConsoleClient::new(&app);
    let signed_in = console.sign_in().await;
    let mut bodies = vec![
        signed_in.body.clone(),
        console.get("/console/login").await.body,
    ];
    let mut cookies = signed_in.set_cookies();
    for path in [
        "/console/customers",
        "/console/customers?search=leak",
        "/console/customers/u_leak",
        "/console/customers/nobody",
        "/console/outbox",
        "/console/events/evt_leak",
        "/console/nowhere",
        "/console/customers/a%00b",
    ] {
        let page = console.get(path).await;
        assert!(
            [
                StatusCode::OK,
                StatusCode::NOT_FOUND,
                StatusCode::BAD_REQUEST
            ]
            .contains(&page.status),
            "{path}: {}",
            page.status
        );
        cookies.extend(page.set_cookies());
        bodies.push(page.body);
    }
    let csrf = console.csrf("/console/customers/u_leak").await;
    let acted = console
        .post(
            "/console/customers/u_leak/balance",
            &[
                ("csrf", &csrf),
                ("feature_id", "messages"),
                ("op", "grant"),
                ("amount", "5"),
            ],
        )
        .await;
    cookies.extend(acted.set_cookies());
    bodies.push(console.get("/console/customers/u_leak").await.body);
    for secret in [API_TOKEN, SECRET_OLD, SECRET_NEW] {
        for body in &bodies {
            assert!(!body.contains(secret), "{secret} on a page");
        }
        for cookie in &cookies {
            assert!(!cookie.contains(secret), "{secret} in a cookie");
        }
    }
    // The pages are kept out of caches and frames, and run only our own script.
    let page = console.get("/console/outbox").await;
    assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(page.headers[header::X_FRAME_OPTIONS], "DENY");
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
}

#[tokio::test]
async fn customers_are_listed_searched_filtered_and_created() {
    let app = TestApp::spawn().await;
    for (id, name) in [
        ("u_ada", "Ada Lovelace"),
        ("u_bob", "Bob Stone"),
        ("u/odd id", "Odd"),
    ] {
        app.create_customer(json!({"id": id, "name": name, "email": format!("{}@x.test", name.split(' ').next().unwrap().to_lowercase())}))
            .await;
    }
    let mut console = ConsoleClient::new(&app);
    console.sign_in().await;
    let all = console.get("/console/customers").await;
    for text in [
        "Ada Lovelace",
        "Bob Stone",
        "/console/customers/u%2Fodd%20id",
        "Free",
        "active",
    ] {
        assert!(all.body.contains(text), "{text}");
    }
    let found = console.get("/console/customers?search=lovelace").await;
    assert!(found.body.contains("Ada Lovelace") && !found.body.contains("Bob Stone"));
    let none = console.get("/console/customers?plan=pro").await;
    assert!(none.body.contains("No customers match."));
    let free = console
        .get("/console/customers?plan=free&status=active")
        .await;
    assert!(free.body.contains("Bob Stone"));
    let bad = console.get("/console/customers?status=nonsense").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("must be a plan status"));

    // Pages of 25, newest first, with a link to the next.
    for n in 0..30 {
        app.create_customer(json!({"id": format!("u_page_{n:02}")}))
            .await;
    }
    let first = console.get("/console/customers").await;
    assert!(first.body.contains("u_page_29") && !first.body.contains("u_page_04"));
    let next = first
        .body
        .split("rel=\"next\"")
        .next()
        .and_then(|head| head.rsplit("href=\"").next())
        .map(|href| href.split('"').next().unwrap().replace("&amp;", "&"))
        .unwrap();
    let second = console.get(&next).await;
    assert!(second.body.contains("u_page_04") && second.body.contains("Ada Lovelace"));
    assert!(!second.body.contains("u_page_29"));

    let csrf = console.csrf("/console/customers").await;
    let created = console
        .post(
            "/console/customers",
            &[
                ("csrf", &csrf),
                ("id", "u_new"),
                ("name", "New Person"),
                ("email", ""),
            ],
        )
        .await;
    assert_eq!(created.location(), "/console/customers/u_new");
    let page = console.get(created.location()).await;
    assert!(
        page.body.contains("Created customer u_new."),
        "{}",
        page.body
    );
    assert!(page.body.contains("New Person"));
    // Shown once.
    assert!(
        !console
            .get(created.location())
            .await
            .body
            .contains("Created customer")
    );
    let refused = console.post("/console/customers", &[("csrf", &csrf)]).await;
    assert_eq!(refused.location(), "/console/customers");
    let page = console.get("/console/customers").await;
    assert!(
        page.body
            .contains("`id` is required unless `email` is given"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn a_balance_edit_shows_its_outcome_the_new_balance_and_the_timeline_entry() {
    let app = TestApp::spawn().await;
    app.create_customer(json!({"id": "u_bal", "name": "Balance"}))
        .await;
    let mut console = ConsoleClient::new(&app);
    console.sign_in().await;
    let page = console.get("/console/customers/u_bal").await;
    assert!(page.body.contains("0 of 100 used"), "{}", page.body);
    let csrf = page.field("csrf").unwrap();
    let key = page.field("idempotency_key").unwrap();
    let fields = [
        ("csrf", csrf.as_str()),
        ("feature_id", "messages"),
        ("op", "grant"),
        ("amount", "50"),
        ("reason", "goodwill"),
        ("idempotency_key", key.as_str()),
    ];
    let done = console
        .post("/console/customers/u_bal/balance", &fields)
        .await;
    assert_eq!(done.location(), "/console/customers/u_bal#usage");
    let page = console.get("/console/customers/u_bal").await;
    assert!(
        page.body
            .contains("Granted 50 messages: the balance is now 150."),
        "{}",
        page.body
    );
    assert!(page.body.contains("0 of 150 used"));
    assert!(page.body.contains("Granted 50 messages") && page.body.contains("goodwill"));
    assert!(page.body.contains("by console"));
    // The same form posted twice edits once.
    console
        .post("/console/customers/u_bal/balance", &fields)
        .await;
    let (_, view) = app.api(Method::GET, "/v1/customers/u_bal", None).await;
    assert_eq!(view["balances"][0]["balance"], 150);

    let bad = console
        .post(
            "/console/customers/u_bal/balance",
            &[
                ("csrf", &csrf),
                ("feature_id", "messages"),
                ("op", "grant"),
                ("amount", "-3"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::SEE_OTHER);
    let page = console.get("/console/customers/u_bal").await;
    assert!(page.body.contains("Failed"), "{}", page.body);
    assert!(page.body.contains("`amount` must be between 0 and"));
}

#[tokio::test]
async fn plan_changes_from_the_console_go_through_the_plan_change_api() {
    let w = World::new().await;
    w.paying_customer("u_seats").await;
    let mut console = ConsoleClient::new(&w.app);
    console.sign_in().await;
    let csrf = console.csrf("/console/customers/u_seats").await;
    let attach = vec![
        ("csrf", csrf.clone()),
        ("plan_id", "team".to_owned()),
        ("quantity", "2".to_owned()),
        ("proration", "default".to_owned()),
        ("success_url", "https://app.test/ok".to_owned()),
        ("cancel_url", "https://app.test/cancel".to_owned()),
    ];
    console
        .post_owned("/console/customers/u_seats/attach", attach)
        .await;
    settle(&w).await;
    let (_, view) = w.app.api(Method::GET, "/v1/customers/u_seats", None).await;
    let team = |view: &Value| {
        view["products"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["plan_id"] == "team")
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(team(&view)["quantity"], 2, "the form's quantity: {view}");
    let sub = team(&view)["stripe_subscription_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_came(&w, &sub, "customer.subscription.created").await;
    let stripe = |w: &World| {
        w.stripe
            .subscriptions()
            .into_iter()
            .find(|s| s["id"] == sub.as_str())
            .unwrap()
    };

    for (change, fields) in [
        ("quantity", vec![("quantity", "3"), ("prorate", "on")]),
        ("cancel", vec![("at", "period_end")]),
        ("uncancel", vec![]),
    ] {
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend(fields);
        let path = format!("/console/customers/u_seats/plans/team/{change}");
        let before = stored_ids(&w).await;
        let answer = console.post(&path, &form).await;
        assert_eq!(answer.location(), "/console/customers/u_seats#plans");
        // The test's workers run when drained: the console says it is on its way.
        let page = console.get("/console/customers/u_seats").await;
        assert!(
            page.body.contains("still running"),
            "{change}: {}",
            page.body
        );
        settle(&w).await;
        let came = new_events(&w, &sub, &before).await;
        assert!(
            came.iter()
                .any(|(kind, state)| kind == "customer.subscription.updated"
                    && (state == "applied" || state == "skipped")),
            "{change}: Stripe's webhook about it must come and be applied: {came:?}"
        );
    }
    assert_eq!(stripe(&w)["items"]["data"][0]["quantity"], 3);
    assert_eq!(stripe(&w)["cancel_at_period_end"], false);
    let (_, view) = w.app.api(Method::GET, "/v1/customers/u_seats", None).await;
    assert_eq!(team(&view)["quantity"], 3);
    assert_eq!(team(&view)["cancel_at_period_end"], false);
    let (_, timeline) = w
        .app
        .api(
            Method::GET,
            "/v1/customers/u_seats/timeline?limit=100",
            None,
        )
        .await;
    let entries = timeline["data"].as_array().unwrap();
    for kind in ["plan.quantity", "plan.canceled", "plan.uncanceled"] {
        let entry = entries.iter().find(|e| e["kind"] == kind).unwrap();
        assert_eq!(entry["source"], "console", "{entry}");
    }

    // A refusal comes back as the API words it.
    let form = [("csrf", csrf.as_str())];
    console
        .post("/console/customers/u_seats/plans/team/uncancel", &form)
        .await;
    let page = console.get("/console/customers/u_seats").await;
    assert!(page.body.contains("is not set to cancel"), "{}", page.body);

    let form = [("csrf", csrf.as_str()), ("at", "now")];
    console
        .post("/console/customers/u_seats/plans/team/cancel", &form)
        .await;
    settle(&w).await;
    assert_came(&w, &sub, "customer.subscription.deleted").await;
    assert_eq!(stripe(&w)["status"], "canceled");
    let (_, view) = w.app.api(Method::GET, "/v1/customers/u_seats", None).await;
    assert_eq!(team(&view), Value::Null, "{view}");
}

#[tokio::test]
async fn attaching_from_the_console_hands_out_the_checkout_url_and_shows_the_plan() {
    let w = World::new().await;
    w.paying_customer("u_paid").await;
    let mut console = ConsoleClient::new(&w.app);
    console.sign_in().await;
    let csrf = console.csrf("/console/customers").await;
    console
        .post(
            "/console/customers",
            &[("csrf", &csrf), ("id", "u_checkout"), ("name", "Checkout")],
        )
        .await;
    let attach = |plan: &'static str, quantity: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("plan_id", plan.to_owned()),
            ("quantity", quantity.to_owned()),
            ("proration", "default".to_owned()),
            ("success_url", "https://app.test/ok".to_owned()),
            ("cancel_url", "https://app.test/cancel".to_owned()),
        ]
    };
    console
        .post_owned("/console/customers/u_checkout/attach", attach("pro", "1"))
        .await;
    w.drain().await;
    let answer = console
        .post_owned("/console/customers/u_checkout/attach", attach("pro", "1"))
        .await;
    assert_eq!(answer.location(), "/console/customers/u_checkout");
    let page = console.get("/console/customers/u_checkout").await;
    assert!(
        page.body.contains("hand this link to the customer"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Checkout page"), "{}", page.body);
    assert!(
        page.body.contains(&w.stripe.url()),
        "the fake's checkout URL"
    );

    console
        .post_owned("/console/customers/u_paid/attach", attach("pro", "1"))
        .await;
    w.drain().await;
    w.drain_retries().await;
    let page = console.get("/console/customers/u_paid").await;
    for text in [
        "Pro",
        "$20.00 / month",
        "Current plan",
        "Open ↗",
        "Invoice paid: $20.00",
        "Pro attached",
    ] {
        assert!(page.body.contains(text), "{text}: {}", page.body);
    }
    assert!(page.body.contains("invoice.paid"), "the customer's events");
}

#[tokio::test]
async fn the_customer_page_shows_a_trial_and_a_discount() {
    let w = World::new().await;
    // A trial without a card (the example catalog's starter), and a reward on a paid plan.
    let (status, _) = w
        .app
        .create_customer(json!({"id": "u_trial_page", "create_in_stripe": true}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    w.drain().await;
    w.attach("u_trial_page", "starter").await;
    w.paying_customer("u_reward_page").await;
    let body = json!({"customer_id": "u_reward_page", "plan_id": "pro", "reward": "loyalty",
                      "success_url": "https://app.test/ok", "cancel_url": "https://app.test/no"});
    let (status, answer) = w.app.api(Method::POST, "/v1/attach", Some(body)).await;
    assert!(status.is_success(), "{answer}");
    settle(&w).await;
    for customer in ["u_trial_page", "u_reward_page"] {
        let sub = w
            .stripe
            .subscriptions()
            .into_iter()
            .find(|s| s["metadata"]["customer_id"] == customer)
            .unwrap_or_else(|| panic!("{customer} has a subscription in the fake"));
        let sub = sub["id"].as_str().unwrap();
        assert_came(&w, sub, "customer.subscription.created").await;
        let stored = stored_events(&w, sub).await;
        assert!(
            stored
                .iter()
                .all(|(_, _, state)| state == "applied" || state == "skipped"),
            "{customer}: every webhook about {sub} applied: {stored:?}"
        );
    }
    let mut console = ConsoleClient::new(&w.app);
    console.sign_in().await;
    let page = console.get("/console/customers/u_trial_page").await;
    assert!(page.body.contains("free trial until"), "{}", page.body);
    let page = console.get("/console/customers/u_reward_page").await;
    assert!(page.body.contains("Discounts"), "{}", page.body);
    assert!(
        page.body
            .contains("Loyalty: $5 off: $5.00 off, forever, on pro"),
        "{}",
        page.body
    );
}
