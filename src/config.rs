//! Layered, typed configuration.
//!
//! Order, later wins: the embedded defaults (`config/defaults.toml`), an optional TOML file
//! (`--config PATH` or `RECONCILER_CONFIG`), then the environment variables of the public
//! contract listed in [`ENV_CONTRACT`]. Secrets are [`Secret`]s: `Debug` prints `[redacted]`.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

const DEFAULTS: &str = include_str!("../config/defaults.toml");

/// Environment variable → config key. This list is the public contract the README repeats.
pub const ENV_CONTRACT: &[(&str, &str)] = &[
    ("DATABASE_URL", "database_url"),
    ("STRIPE_WEBHOOK_SECRET", "stripe_webhook_secret"),
    ("RECONCILER_LISTEN", "listen"),
    ("RECONCILER_API_TOKEN", "api_token"),
    (
        "RECONCILER_SIGNATURE_TOLERANCE_SECS",
        "signature_tolerance_secs",
    ),
    ("RECONCILER_MAX_BODY_BYTES", "http.max_body_bytes"),
    ("RECONCILER_MAX_CONNECTIONS", "http.max_connections"),
    ("RECONCILER_LOG_FORMAT", "log_format"),
    ("RECONCILER_WORKERS", "engine.workers"),
    ("RECONCILER_CATALOG", "catalog"),
    ("RECONCILER_METRICS_REQUIRE_TOKEN", "metrics.require_token"),
    ("STRIPE_API_KEY", "stripe.api_key"),
    ("STRIPE_API_BASE", "stripe.api_base"),
];

/// A value that must never be printed: `Debug` and `Display` show `[redacted]`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The only way to read the value; grep for it to audit where secrets go.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Settings {
    pub database_url: Option<Secret>,
    /// Comma-separated `whsec_...` values; any one may match (rotation).
    pub stripe_webhook_secret: Option<Secret>,
    pub api_token: Option<Secret>,
    pub listen: SocketAddr,
    /// The catalog TOML file; none means an empty catalog.
    pub catalog: Option<std::path::PathBuf>,
    pub signature_tolerance_secs: u64,
    pub log_format: LogFormat,
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub ingest: IngestSettings,
    pub engine: EngineSettings,
    pub metrics: MetricsSettings,
    pub stripe: StripeSettings,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Compact,
    Json,
}

#[derive(Clone, Debug, Deserialize)]
pub struct HttpSettings {
    pub max_body_bytes: usize,
    pub max_connections: usize,
    pub header_read_timeout_ms: u64,
    pub body_read_timeout_ms: u64,
    pub shutdown_timeout_secs: u64,
}

#[derive(Clone, Debug, Deserialize)]
pub struct DatabaseSettings {
    pub max_connections: u32,
    pub acquire_timeout_ms: u64,
}

#[derive(Clone, Debug, Deserialize)]
pub struct IngestSettings {
    /// Concurrent group-commit writers.
    pub writers: usize,
    /// Most deliveries committed in one transaction.
    pub batch_max: usize,
    /// How long a writer waits to fill a batch once it holds one delivery.
    pub batch_wait_us: u64,
}

#[derive(Clone, Debug, Deserialize)]
pub struct EngineSettings {
    pub workers: usize,
    pub batch_size: i64,
    pub max_attempts: i32,
    pub max_age_secs: u64,
    pub retry_initial_ms: u64,
    pub retry_max_secs: u64,
    pub lease_secs: u64,
    pub poll_interval_ms: u64,
    pub notify_interval_ms: u64,
    pub retention_days: u32,
    pub prune_interval_secs: u64,
    /// While this many deliveries wait for their ingest commit (and applying lags less than
    /// 30 s), only the first worker claims: a burst is acknowledged first and applied
    /// right after. 0: never yield.
    pub yield_to_ingest_at: usize,
}

#[derive(Clone, Debug, Deserialize)]
pub struct StripeSettings {
    /// `sk_...`; without it, nothing that needs Stripe runs (attach answers 503).
    pub api_key: Option<Secret>,
    pub api_base: String,
    pub timeout_ms: u64,
    pub attach_wait_ms: u64,
}

#[derive(Clone, Debug, Deserialize)]
pub struct MetricsSettings {
    /// `GET /metrics` asks for the `/v1` bearer token too.
    pub require_token: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("missing {env}: {what} is required (set {env} or `{key}` in the config file)")]
    Missing {
        env: &'static str,
        key: &'static str,
        what: &'static str,
    },
    #[error("invalid {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// What a command needs from the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    /// Ops commands: the database only.
    Database,
    /// `serve` and `check-config`: database, webhook secret and API token.
    Daemon,
}

impl Settings {
    /// Loads defaults < file < environment, then validates for `needs`.
    pub fn load(file: Option<&Path>, needs: Needs) -> Result<Self, ConfigError> {
        Self::load_from(file, needs, |name| std::env::var(name).ok())
    }

    /// Like [`Settings::load`] with an explicit environment, for tests.
    pub fn load_from(
        file: Option<&Path>,
        needs: Needs,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(path) = file {
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        for (name, key) in ENV_CONTRACT {
            if let Some(value) = env(name).filter(|v| !v.is_empty()) {
                builder = builder.set_override(*key, value)?;
            }
        }
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.validate(needs)?;
        Ok(settings)
    }

    fn validate(&self, needs: Needs) -> Result<(), ConfigError> {
        if self.database_url.is_none() {
            return Err(missing("DATABASE_URL"));
        }
        if needs == Needs::Daemon {
            if self.webhook_secrets().is_empty() {
                return Err(missing("STRIPE_WEBHOOK_SECRET"));
            }
            if self
                .api_token
                .as_ref()
                .is_none_or(|t| t.expose().is_empty())
            {
                return Err(missing("RECONCILER_API_TOKEN"));
            }
        }
        if self.http.max_body_bytes == 0 {
            return Err(invalid("http.max_body_bytes", "must be at least 1"));
        }
        if self.http.max_connections == 0 {
            return Err(invalid("http.max_connections", "must be at least 1"));
        }
        if self.ingest.writers == 0 || self.ingest.batch_max == 0 {
            return Err(invalid(
                "ingest",
                "writers and batch_max must be at least 1",
            ));
        }
        if self.engine.batch_size < 1 || self.engine.max_attempts < 1 {
            return Err(invalid(
                "engine",
                "batch_size and max_attempts must be at least 1",
            ));
        }
        if self.engine.retention_days < 7 {
            return Err(invalid(
                "engine.retention_days",
                "must be at least 7 (Stripe redelivers for 3 days)",
            ));
        }
        Ok(())
    }

    pub fn database_url(&self) -> &str {
        self.database_url.as_ref().map_or("", Secret::expose)
    }

    /// The configured webhook secrets, split on commas, blanks dropped.
    pub fn webhook_secrets(&self) -> Vec<Secret> {
        self.stripe_webhook_secret
            .as_ref()
            .map(|s| {
                s.expose()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(Secret::new)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.http.shutdown_timeout_secs)
    }
}

fn missing(env: &'static str) -> ConfigError {
    let (key, what) = match env {
        "DATABASE_URL" => ("database_url", "the Postgres URL"),
        "STRIPE_WEBHOOK_SECRET" => ("stripe_webhook_secret", "a webhook signing secret"),
        _ => ("api_token", "the bearer token for /v1"),
    };
    ConfigError::Missing { env, key, what }
}

fn invalid(key: &'static str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    const FULL: &[(&str, &str)] = &[
        ("DATABASE_URL", "postgres://u:hunter2@localhost/db"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_old, whsec_new"),
        ("RECONCILER_API_TOKEN", "tok_secret"),
        ("STRIPE_API_KEY", "sk_test_secret_key"),
    ];

    #[test]
    fn defaults_and_env_layer() {
        let s = Settings::load_from(None, Needs::Daemon, env(FULL)).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.signature_tolerance_secs, 300);
        assert_eq!(s.http.max_body_bytes, 1024 * 1024);
        let secrets: Vec<String> = s
            .webhook_secrets()
            .iter()
            .map(|s| s.expose().to_owned())
            .collect();
        assert_eq!(secrets, ["whsec_old", "whsec_new"]);
    }

    #[test]
    fn each_missing_requirement_is_named() {
        for name in [
            "DATABASE_URL",
            "STRIPE_WEBHOOK_SECRET",
            "RECONCILER_API_TOKEN",
        ] {
            let rest: Vec<_> = FULL.iter().copied().filter(|(k, _)| *k != name).collect();
            let err = Settings::load_from(None, Needs::Daemon, env(&rest)).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
        let db_only = &FULL[..1];
        assert!(Settings::load_from(None, Needs::Database, env(db_only)).is_ok());
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let s = Settings::load_from(None, Needs::Daemon, env(FULL)).unwrap();
        let debug = format!("{s:?}");
        for secret in [
            "hunter2",
            "whsec_old",
            "whsec_new",
            "tok_secret",
            "sk_test_secret_key",
        ] {
            assert!(!debug.contains(secret), "{secret} leaked in {debug}");
        }
        assert!(debug.contains("[redacted]"));
    }

    #[test]
    fn metrics_token_is_off_by_default_and_env_turns_it_on() {
        let s = Settings::load_from(None, Needs::Daemon, env(FULL)).unwrap();
        assert!(!s.metrics.require_token);
        let mut pairs = FULL.to_vec();
        pairs.push(("RECONCILER_METRICS_REQUIRE_TOKEN", "true"));
        let s = Settings::load_from(None, Needs::Daemon, env(&pairs)).unwrap();
        assert!(s.metrics.require_token);
    }

    #[test]
    fn file_layer_sits_between_defaults_and_env() {
        let dir = std::env::temp_dir().join(format!("rc-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9999\"\nsignature_tolerance_secs = 60\n",
        )
        .unwrap();
        let mut pairs = FULL.to_vec();
        pairs.push(("RECONCILER_SIGNATURE_TOLERANCE_SECS", "30"));
        let s = Settings::load_from(Some(&path), Needs::Daemon, env(&pairs)).unwrap();
        assert_eq!(s.listen.port(), 9999);
        assert_eq!(s.signature_tolerance_secs, 30);
    }
}
