//! The alert rules and the dashboard against the real thing: Debian's `prometheus`, started
//! on a scratch folder with 1 s scrapes and evaluations, loads `deploy/prometheus/alerts.yml`
//! and scrapes a running daemon. A dead letter makes `ReconcilerDeadLetters` fire in
//! Prometheus's own API; every metric the rules and `deploy/grafana/stripe-reconciler.json`
//! query exists in the daemon's `/metrics`.
//!
//! Prometheus is never optional: the test fails, saying what to install, when it is missing
//! (`scripts/test.sh` installs it).

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use fake_stripe::{FakeConfig, FakeStripe};
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use serde_json::Value;
use stripe_reconciler::cli::HttpClient;
use stripe_reconciler::config::Secret;

use crate::daemon::Daemon;
use crate::helpers::*;

const ALERTS: &str = "deploy/prometheus/alerts.yml";
const DASHBOARD: &str = "deploy/grafana/stripe-reconciler.json";
/// The alerts the issue asks for, by the names in alerts.yml.
const ALERT_NAMES: &[&str] = &[
    "ReconcilerDeadLetters",
    "ReconcilerApplyLagHigh",
    "ReconcilerWebhookUnavailable",
    "ReconcilerSignatureFailures",
    "ReconcilerCatchUpFoundMissedEvents",
    "ReconcilerAuditFoundDrift",
    "ReconcilerWorkersStalled",
    "ReconcilerDatabaseUnreachable",
    "ReconcilerDown",
];

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn client() -> HttpClient {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

async fn get(client: &HttpClient, url: &str) -> (StatusCode, String) {
    let req = Request::get(url).body(Full::new(Bytes::new())).unwrap();
    match client.request(req).await {
        Ok(response) => {
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// Polls `check` every 200 ms until it returns `Some`, for at most `limit`; then panics with
/// `what` and the last thing `check` saw.
async fn until<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match check().await {
            Ok(done) => return done,
            Err(last) if Instant::now() > deadline => {
                panic!("{what}: not within {limit:?}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

// ---- Prometheus ---------------------------------------------------------------------------

/// A `prometheus` server on a scratch folder, killed and removed on drop.
struct Prometheus {
    child: Child,
    dir: PathBuf,
    url: String,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (host:port) as the job `stripe-reconciler` every
    /// second, with alerts.yml evaluated every second; returns once it is ready.
    async fn start(target: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "stripe-reconciler-prometheus-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files: [{rules:?}]\n\
             scrape_configs:\n  - job_name: stripe-reconciler\n    \
             static_configs: [{{ targets: [{target:?}] }}]\n",
            rules = repo_file(ALERTS).display().to_string(),
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        // A port picked and freed may be taken meanwhile: try again on another.
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
            let spawned = Command::new("prometheus")
                .arg(format!(
                    "--config.file={}",
                    dir.join("prometheus.yml").display()
                ))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn();
            let child = match spawned {
                Ok(child) => child,
                Err(e) if e.kind() == ErrorKind::NotFound => panic!(
                    "prometheus is not installed: this test needs it (Debian/Ubuntu: apt-get \
                     install prometheus; scripts/test.sh installs it)"
                ),
                Err(e) => panic!("cannot run prometheus: {e}"),
            };
            let mut prometheus = Self {
                child,
                dir: dir.clone(),
                url: format!("http://127.0.0.1:{port}"),
            };
            if prometheus.ready().await {
                return prometheus;
            }
            let _ = prometheus.child.kill();
            let _ = prometheus.child.wait();
            // Keep the folder for the next try: drop would remove it.
            std::mem::forget(prometheus);
        }
        let log = std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
        panic!("prometheus did not start:\n{log}");
    }

    /// Waits for `/-/ready` (at most 30 s); false when the process exited.
    async fn ready(&mut self) -> bool {
        let client = client();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            let (status, _) = get(&client, &format!("{}/-/ready", self.url)).await;
            if status == StatusCode::OK {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    }

    /// `GET /api/v1/PATH` → its `data`, or why not.
    async fn api(&self, path_and_query: &str) -> Result<Value, String> {
        let (status, body) = get(&client(), &format!("{}/api/v1/{path_and_query}", self.url)).await;
        let json: Value = serde_json::from_str(&body).map_err(|_| format!("{status}: {body}"))?;
        if json["status"] != "success" {
            return Err(format!("{status}: {body}"));
        }
        Ok(json["data"].clone())
    }

    /// An instant query's samples.
    async fn query(&self, promql: &str) -> Result<Vec<Value>, String> {
        let q: String = form_urlencoded::byte_serialize(promql.as_bytes()).collect();
        let data = self.api(&format!("query?query={q}")).await?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }

    /// The alerting rules as Prometheus loaded them: `/api/v1/rules`' rules of every group.
    async fn rules(&self) -> Result<Vec<Value>, String> {
        let data = self.api("rules?type=alert").await?;
        Ok(data["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect())
    }

    async fn alerts(&self, name: &str) -> Result<Vec<Value>, String> {
        let data = self.api("alerts").await?;
        Ok(data["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["labels"]["alertname"] == name)
            .cloned()
            .collect())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---- metric names -------------------------------------------------------------------------

/// The metric names a PromQL expression reads: its identifiers of our two prefixes (label
/// names, functions and Grafana's `$variables` have neither).
fn metric_names(promql: &str) -> BTreeSet<String> {
    promql
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|word| word.starts_with("stripe_") || word.starts_with("reconciler_"))
        .map(str::to_owned)
        .collect()
}

/// The sample names of a `/metrics` text (histograms as `_bucket`, `_sum`, `_count`).
fn exposed_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

fn dashboard() -> Value {
    let text = std::fs::read_to_string(repo_file(DASHBOARD)).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{DASHBOARD} is not JSON: {e}"))
}

/// Every `expr` of the dashboard's panels, with its panel's title.
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut queries = Vec::new();
    let mut panels: Vec<&Value> = dashboard["panels"].as_array().unwrap().iter().collect();
    while let Some(panel) = panels.pop() {
        // Collapsed rows hold their panels inside.
        panels.extend(panel["panels"].as_array().into_iter().flatten());
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap_or_default().to_owned();
            queries.push((panel["title"].as_str().unwrap_or_default().to_owned(), expr));
        }
    }
    queries
}

/// An event that goes dead at once: a subscription item with neither price nor plan.
fn dead_letter_event(id: &str) -> Vec<u8> {
    let mut event: Value = serde_json::from_slice(
        &std::fs::read(fixtures_dir().join("customer.subscription.updated.json")).unwrap(),
    )
    .unwrap();
    event["id"] = id.into();
    for item in event["data"]["object"]["items"]["data"]
        .as_array_mut()
        .unwrap()
    {
        let item = item.as_object_mut().unwrap();
        item.remove("price");
        item.remove("plan");
    }
    serde_json::to_vec(&event).unwrap()
}

// ---- tests --------------------------------------------------------------------------------

#[test]
fn the_dashboard_parses_and_shows_what_ops_watch() {
    let dashboard = dashboard();
    assert_eq!(dashboard["uid"], "stripe-reconciler");
    let queries = dashboard_queries(&dashboard);
    assert!(!queries.is_empty(), "no panel queries anything");
    for (title, expr) in &queries {
        // `up` is Prometheus's own, for the daemon's scrape job.
        assert!(
            !metric_names(expr).is_empty() || expr.starts_with("sum(up{"),
            "panel {title:?} queries none of our metrics: {expr}"
        );
    }
    // What the issue asks the dashboard to show, by the metric that shows it.
    let all: BTreeSet<String> = queries.iter().flat_map(|(_, e)| metric_names(e)).collect();
    for needed in [
        "stripe_webhooks_received_total",           // ingest rate
        "stripe_webhook_ingest_seconds_bucket",     // ack latency
        "reconciler_events_total",                  // applied/s
        "reconciler_apply_lag_seconds_bucket",      // apply lag
        "reconciler_outbox_jobs",                   // queue depth, dead letters
        "reconciler_outbox_oldest_pending_seconds", // oldest pending
        "reconciler_dead_letters_total",            // dead letters made
        "stripe_api_calls_total",                   // Stripe calls and errors by kind
        "reconciler_caught_up_events_total",        // catch-up
        "reconciler_drift_total",                   // drift
    ] {
        assert!(all.contains(needed), "the dashboard does not show {needed}");
    }
    // Every panel uses the dashboard's data source variable, none a fixed one.
    let text = std::fs::read_to_string(repo_file(DASHBOARD)).unwrap();
    let fixed =
        text.matches("\"uid\": \"").count() - text.matches("\"uid\": \"${datasource}\"").count();
    assert_eq!(fixed, 1, "only the dashboard's own uid may be fixed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_prometheus_fires_the_dead_letter_alert_and_finds_every_metric() {
    // The daemon, with Stripe (the fake) so that catch-up and the audit run every second.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stripe = FakeStripe::start(
        listener,
        FakeConfig {
            webhook_url: None,
            webhook_secret: None,
        },
    )
    .await;
    let database_url = fresh_database().await;
    let scratch = ScratchFile(std::env::temp_dir().join(format!(
        "stripe-reconciler-prom-config-{}-{:08x}.toml",
        std::process::id(),
        rand::random::<u32>()
    )));
    std::fs::write(
        &scratch.0,
        "[stripe]\ncatch_up_interval_secs = 1\naudit_interval_secs = 1\n",
    )
    .unwrap();
    let stripe_url = stripe.url();
    let config = scratch.0.display().to_string();
    let daemon = Daemon::spawn(
        &database_url,
        &[
            ("STRIPE_API_KEY", "sk_test_prometheus_4d1a"),
            ("STRIPE_API_BASE", &stripe_url),
            ("RECONCILER_CONFIG", &config),
        ],
    );
    let pool = sqlx::PgPool::connect(&database_url).await.unwrap();
    // A finished audit that found drift, as `audit` stores it: reconciler_drift_total{field}
    // is summed from the stored runs at each scrape.
    sqlx::query(
        "INSERT INTO audits (scope, finished_at, next_since, checked, drifted, repaired, drift)
         VALUES ('changed', now(), now(), 1, 1, 1, '{\"status\": 1}')",
    )
    .execute(&pool)
    .await
    .unwrap();

    let prometheus = Prometheus::start(&daemon.addr).await;

    // Every rule of alerts.yml is loaded and evaluates without an error.
    let rules = until("every rule evaluated", Duration::from_secs(30), || async {
        let rules = prometheus.rules().await?;
        let evaluated = rules.len() == ALERT_NAMES.len()
            && rules
                .iter()
                .all(|r| r["health"] == "ok" && r["lastEvaluation"] != "0001-01-01T00:00:00Z");
        if evaluated {
            Ok(rules)
        } else {
            Err(format!("{rules:?}\n{}", prometheus.log()))
        }
    })
    .await;
    let loaded: BTreeSet<&str> = rules.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(loaded, ALERT_NAMES.iter().copied().collect());

    // Scraped, with no dead letter: the alert is quiet.
    // `seen`: when a query found the scraped gauge at 0 (it stays 0 until the events below).
    let seen: f64 = until(
        "a scrape with 0 dead letters",
        Duration::from_secs(30),
        || async {
            let samples = prometheus
                .query(r#"reconciler_outbox_jobs{job="stripe-reconciler",state="dead"}"#)
                .await?;
            match samples.as_slice() {
                [s] if s["value"][1] == "0" => Ok(s["value"][0].as_f64().unwrap()),
                _ => Err(format!("{samples:?}")),
            }
        },
    )
    .await;
    let up = prometheus
        .query(r#"up{job="stripe-reconciler"}"#)
        .await
        .unwrap();
    assert_eq!(up.len(), 1, "{up:?}");
    assert_eq!(up[0]["value"][1], "1", "the daemon is scraped: {up:?}");
    until(
        "the dead-letter rule evaluated on that data",
        Duration::from_secs(10),
        || async {
            let rules = prometheus.rules().await?;
            let rule = rules
                .iter()
                .find(|r| r["name"] == "ReconcilerDeadLetters")
                .cloned()
                .unwrap_or_default();
            let evaluated = rule["lastEvaluation"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .is_some_and(|t| t.timestamp_millis() as f64 / 1000.0 > seen);
            (evaluated && rule["state"] == "inactive")
                .then_some(())
                .ok_or(format!("{rule}"))
        },
    )
    .await;
    assert_eq!(
        prometheus.alerts("ReconcilerDeadLetters").await.unwrap(),
        Vec::<Value>::new(),
        "no dead letter, no alert"
    );

    // A dead letter, and an event that is finished (skipped: no handler for its type).
    let client = client();
    let secret = Secret::new(SECRET_OLD);
    let url = daemon.url("/webhooks/stripe");
    for body in [
        dead_letter_event("evt_prometheus_dead"),
        event_at(
            "evt_prometheus_ok",
            "product.created",
            "cus_prometheus",
            now(),
        ),
    ] {
        let (status, answer) =
            stripe_reconciler::cli::post_signed(&client, &url, body.into(), &secret)
                .await
                .unwrap();
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    until("the event goes dead", Duration::from_secs(30), || async {
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM events WHERE id = 'evt_prometheus_dead'")
                .fetch_optional(&pool)
                .await
                .unwrap();
        (state.as_deref() == Some("dead"))
            .then_some(())
            .ok_or(format!("{state:?}"))
    })
    .await;

    let firing = until(
        "ReconcilerDeadLetters firing",
        Duration::from_secs(60),
        || async {
            let alerts = prometheus.alerts("ReconcilerDeadLetters").await?;
            match alerts.as_slice() {
                [a] if a["state"] == "firing" => Ok(a.clone()),
                _ => Err(format!("{alerts:?}")),
            }
        },
    )
    .await;
    assert_eq!(firing["labels"]["severity"], "ticket", "{firing}");
    assert_eq!(firing["labels"]["job"], "stripe-reconciler", "{firing}");
    assert_eq!(firing["value"], "1e+00", "{firing}");
    assert_eq!(
        firing["annotations"]["runbook_url"], "docs/RUNBOOK.md#reconcilerdeadletters",
        "{firing}"
    );

    // Every metric the rules (as Prometheus parsed them) and the dashboard read is in the
    // daemon's /metrics, once catch-up, the audit and the applier have run.
    let mut wanted: BTreeSet<(String, String)> = BTreeSet::new();
    for rule in &rules {
        let query = rule["query"].as_str().unwrap();
        for name in metric_names(query) {
            wanted.insert((name, format!("alert {}", rule["name"])));
        }
    }
    for (title, expr) in dashboard_queries(&dashboard()) {
        for name in metric_names(&expr) {
            wanted.insert((name, format!("dashboard panel {title:?}")));
        }
    }
    let metrics_url = daemon.url("/metrics");
    until(
        "every metric the rules and dashboard use is exposed",
        Duration::from_secs(30),
        || async {
            let (_, text) = get(&client, &metrics_url).await;
            let exposed = exposed_names(&text);
            let missing: Vec<_> = wanted
                .iter()
                .filter(|(n, _)| !exposed.contains(n))
                .collect();
            missing
                .is_empty()
                .then_some(())
                .ok_or(format!("missing {missing:?}"))
        },
    )
    .await;

    drop(prometheus);
    drop(daemon);
}

/// A file removed on drop, also when the test fails.
struct ScratchFile(PathBuf);

impl Drop for ScratchFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
