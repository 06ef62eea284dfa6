//! Spawn the real app on port 0 against a fresh database; sign and send events.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use outbox::{Engine, Registry};
use serde_json::Value;
use sqlx::PgPool;
use stripe_reconciler::app::{self, Application};
use stripe_reconciler::cli::HttpClient;
use stripe_reconciler::config::{Needs, Secret, Settings};
use stripe_reconciler::db;
use stripe_reconciler::stripe::signature;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const SECRET_OLD: &str = "whsec_test_old_3f9a";
pub const SECRET_NEW: &str = "whsec_test_new_77c1";
pub const API_TOKEN: &str = "test-api-token-5b1e";

/// The admin URL the test script exports (a scratch server it started).
pub fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must point at a scratch Postgres: run scripts/test.sh")
}

/// A new, empty database; returns its URL.
pub async fn fresh_database() -> String {
    let admin = admin_url();
    let name = format!("rt_{:016x}", rand::random::<u64>());
    let pool = PgPool::connect(&admin).await.expect("admin connection");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .expect("create test database");
    pool.close().await;
    let base = admin.rsplit_once('/').expect("URL has a path").0;
    format!("{base}/{name}")
}

/// Drops a database with its connections: the way tests break Postgres on purpose.
pub async fn drop_database(url: &str) {
    let name = url.rsplit_once('/').unwrap().1;
    let pool = PgPool::connect(&admin_url()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&pool)
    .await
    .unwrap();
}

/// The environment a test daemon sees.
pub fn test_env(database_url: &str) -> Vec<(String, String)> {
    [
        ("DATABASE_URL", database_url.to_owned()),
        (
            "STRIPE_WEBHOOK_SECRET",
            format!("{SECRET_OLD},{SECRET_NEW}"),
        ),
        ("RECONCILER_API_TOKEN", API_TOKEN.to_owned()),
        ("RECONCILER_LISTEN", "127.0.0.1:0".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Settings for an in-process test app: no worker loops (tests drain the queue with
/// `engine.run_until_idle()`), fast retries.
pub fn test_settings(database_url: &str) -> Settings {
    let env = test_env(database_url);
    let mut settings = Settings::load_from(None, Needs::Daemon, |name| {
        env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    })
    .expect("test settings are valid");
    settings.engine.workers = 0;
    settings.catalog =
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/catalog.example.toml"));
    settings.engine.retry_initial_ms = 10;
    settings.engine.retry_max_secs = 1;
    settings
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub database_url: String,
    pub pool: PgPool,
    pub client: HttpClient,
    pub shutdown: CancellationToken,
    pub engine: Engine,
    pub handle: JoinHandle<anyhow::Result<()>>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// A migrated fresh database and the app built exactly as `serve` builds it.
    pub async fn spawn_with(customize: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_inner(customize, None).await
    }

    /// As [`TestApp::spawn_with`], with the given handlers instead of the production ones.
    pub async fn spawn_with_registry(
        customize: impl FnOnce(&mut Settings),
        registry: Registry,
    ) -> Self {
        Self::spawn_inner(customize, Some(registry)).await
    }

    async fn spawn_inner(
        customize: impl FnOnce(&mut Settings),
        registry: Option<Registry>,
    ) -> Self {
        let database_url = fresh_database().await;
        let mut settings = test_settings(&database_url);
        customize(&mut settings);
        let pool = db::pool(&settings).unwrap();
        db::migrate(&pool).await.expect("migrations run");
        Self::start_with(settings, pool, database_url, registry).await
    }

    /// Another instance of the daemon on an existing, migrated database; `None` for the
    /// production handlers.
    pub async fn start_with(
        settings: Settings,
        pool: PgPool,
        database_url: String,
        registry: Option<Registry>,
    ) -> Self {
        let app = match registry {
            None => Application::build(settings, pool.clone()).await.unwrap(),
            Some(registry) => {
                let catalog = app::load_catalog(&settings).unwrap();
                Application::build_with(settings, pool.clone(), catalog, registry)
                    .await
                    .unwrap()
            }
        };
        let engine = app.engine();
        let addr = app.local_addr();
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(app.run_until(shutdown.clone()));
        Self {
            addr,
            database_url,
            pool,
            client: Client::builder(TokioExecutor::new()).build_http(),
            shutdown,
            engine,
            handle,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POSTs `body` signed with the first secret, now.
    pub async fn post_event(&self, body: &[u8]) -> (StatusCode, Value) {
        let header = signature::sign(&Secret::new(SECRET_OLD), now(), body);
        self.post_webhook(body, Some(&header)).await
    }

    pub async fn post_webhook(&self, body: &[u8], signature: Option<&str>) -> (StatusCode, Value) {
        let mut req = Request::post(self.url("/webhooks/stripe"));
        if let Some(sig) = signature {
            req = req.header("stripe-signature", sig);
        }
        self.send(req.body(Full::new(Bytes::copy_from_slice(body))).unwrap())
            .await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.send(self.get_request(path, token)).await
    }

    /// GETs `path` and returns the body as text (for `/metrics`).
    pub async fn get_text(&self, path: &str, token: Option<&str>) -> (StatusCode, String) {
        let response = self
            .client
            .request(self.get_request(path, token))
            .await
            .expect("request sent");
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            String::from_utf8(body.to_vec()).expect("a UTF-8 body"),
        )
    }

    fn get_request(&self, path: &str, token: Option<&str>) -> Request<Full<Bytes>> {
        let mut req = Request::builder().method(Method::GET).uri(self.url(path));
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        req.body(Full::new(Bytes::new())).unwrap()
    }

    pub async fn send(&self, req: Request<Full<Bytes>>) -> (StatusCode, Value) {
        let response = self.client.request(req).await.expect("request sent");
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (status, json)
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap()
    }
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A minimal Stripe event.
pub fn event(id: &str, event_type: &str, customer: &str) -> Vec<u8> {
    event_at(id, event_type, customer, 1_795_000_000)
}

/// A minimal Stripe event created at `created`; its object id is `obj_{id}`.
pub fn event_at(id: &str, event_type: &str, customer: &str, created: i64) -> Vec<u8> {
    let object =
        serde_json::json!({ "id": format!("obj_{id}"), "object": "invoice", "customer": customer });
    envelope(id, event_type, created, object)
}

/// A Stripe event (the pinned API version, test mode) carrying `object`.
pub fn envelope(id: &str, event_type: &str, created: i64, object: Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "id": id,
        "object": "event",
        "api_version": "2026-09-30.endive",
        "created": created,
        "livemode": false,
        "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null },
        "type": event_type,
        "data": { "object": object }
    }))
    .unwrap()
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Every fixture event file, sorted by name.
pub fn fixture_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// An attach of `plan_id` for the customer, as the API records one without URLs.
pub fn new_attach(
    customer_pk: i64,
    plan_id: &str,
) -> stripe_reconciler::store::attaches::NewAttach<'_> {
    stripe_reconciler::store::attaches::NewAttach {
        customer_pk,
        plan_id,
        success_url: None,
        cancel_url: None,
        quantity: 1,
        prorate: true,
    }
}
