//! Layered, typed configuration.
//!
//! Order, later wins: the embedded defaults (`config/defaults.toml`), an optional TOML file
//! (`--config PATH` or `RECONCILER_CONFIG`), then the environment variables of the public
//! contract listed in [`ENV_CONTRACT`]. Secrets are [`Secret`]s: `Debug` prints `[redacted]`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub use outbox::{EngineSettings, IngestSettings};

use crate::stripe::event::Scope;

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
    ("RECONCILER_BATCH_SIZE", "engine.batch_size"),
    ("RECONCILER_CATALOG", "catalog"),
    ("RECONCILER_METRICS_REQUIRE_TOKEN", "metrics.require_token"),
    ("STRIPE_API_KEY", "stripe.api_key"),
    ("STRIPE_API_BASE", "stripe.api_base"),
    ("RECONCILER_PAST_DUE_ACCESS", "billing.past_due_access"),
];

pub use crate::secret::Secret;

#[derive(Clone, Debug, Deserialize)]
pub struct Settings {
    pub database_url: Option<Secret>,
    /// Comma-separated `whsec_...` values; any one may match (rotation).
    pub stripe_webhook_secret: Option<Secret>,
    pub api_token: Option<Secret>,
    #[serde(deserialize_with = "socket_addr")]
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
    pub billing: BillingSettings,
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
pub struct StripeSettings {
    /// `sk_...`; without it, nothing that needs Stripe runs (attach answers 503).
    pub api_key: Option<Secret>,
    pub api_base: String,
    pub timeout_ms: u64,
    pub attach_wait_ms: u64,
    /// The mode served when there is no API key to tell it (the key's prefix decides
    /// otherwise, and must agree). Events of the other mode are stored and skipped.
    pub livemode: Option<bool>,
    /// `acct_...`: when set, events of another account (connected accounts) are stored and
    /// skipped.
    pub account: Option<String>,
    /// How often the daemon catches up from the Events API (0: never); see [`crate::catchup`].
    pub catch_up_interval_secs: u64,
    /// How far before the newest event held the daemon's first catch-up looks.
    pub catch_up_window_secs: u64,
    /// How often the daemon audits the store against Stripe (0: never); see [`crate::audit`].
    pub audit_interval_secs: u64,
    /// Customers picked at random that each periodic audit compares besides the changed ones.
    pub audit_sample: u32,
}

#[derive(Clone, Debug, Deserialize)]
pub struct BillingSettings {
    /// How long a customer whose renewal failed keeps access (see [`crate::access`]).
    pub past_due_access: crate::access::PastDueAccess,
}

#[derive(Clone, Debug, Deserialize)]
pub struct MetricsSettings {
    /// `GET /metrics` asks for the `/v1` bearer token too.
    pub require_token: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not a `#[source]`: the message already says it all, and a source would print twice.
    #[error("configuration: {0}")]
    Load(config::ConfigError),
    #[error("missing {env}: {what} is required (set {env} or `{key}` in the config file)")]
    Missing {
        env: &'static str,
        key: &'static str,
        what: &'static str,
    },
    #[error("invalid {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

impl From<config::ConfigError> for ConfigError {
    fn from(error: config::ConfigError) -> Self {
        Self::Load(error)
    }
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
        let Some(url) = &self.database_url else {
            return Err(missing("DATABASE_URL"));
        };
        // Never echo the URL: it holds the password.
        if !["postgres://", "postgresql://"]
            .iter()
            .any(|scheme| url.expose().starts_with(scheme))
        {
            return Err(invalid(
                "database_url (DATABASE_URL)",
                "must start with postgres:// or postgresql:// (the value is not shown: it may hold a password)",
            ));
        }
        self.scope()?;
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

    /// The events this daemon applies: the mode of `stripe.api_key` (`sk_live_`/`rk_live_`
    /// or `sk_test_`/`rk_test_`), else `stripe.livemode`, else test mode; and
    /// `stripe.account` when set. A key and a `stripe.livemode` that disagree are an error.
    pub fn scope(&self) -> Result<Scope, ConfigError> {
        let stripe = &self.stripe;
        let key_mode = match &stripe.api_key {
            None => None,
            Some(key) => Some(key_livemode(key.expose()).ok_or_else(|| {
                invalid(
                    "stripe.api_key (STRIPE_API_KEY)",
                    "must start with sk_live_, sk_test_, rk_live_ or rk_test_",
                )
            })?),
        };
        let livemode = match (key_mode, stripe.livemode) {
            (Some(key), Some(set)) if key != set => {
                return Err(invalid(
                    "stripe.livemode",
                    &format!(
                        "is {set}, but STRIPE_API_KEY is a {} key",
                        if key { "live" } else { "test" }
                    ),
                ));
            }
            (Some(key), _) => key,
            (None, set) => set.unwrap_or(false),
        };
        if let Some(account) = &stripe.account
            && !crate::stripe::ids::is_valid("acct_", account)
        {
            return Err(invalid(
                "stripe.account",
                "must be a Stripe account id (acct_ and letters, digits or _)",
            ));
        }
        Ok(Scope {
            livemode,
            account: stripe.account.clone(),
        })
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

/// `Some(livemode)` for a secret or restricted key, `None` for anything else.
fn key_livemode(key: &str) -> Option<bool> {
    match key.get(..8) {
        Some("sk_live_" | "rk_live_") => Some(true),
        Some("sk_test_" | "rk_test_") => Some(false),
        _ => None,
    }
}

/// `listen` as `address:port`, with an error that says so (and shows the value, which is
/// no secret) instead of serde's "invalid socket address syntax".
fn socket_addr<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "`{text}` is not an IP address and port (such as 127.0.0.1:8080)"
        ))
    })
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

    fn with(pairs: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut all: Vec<_> = FULL
            .iter()
            .copied()
            .filter(|(k, _)| !pairs.iter().any(|(p, _)| p == k))
            .collect();
        all.extend_from_slice(pairs);
        all
    }

    #[test]
    fn a_listen_address_without_a_port_number_is_named_in_one_line() {
        for value in ["127.0.0.1:notaport", "127.0.0.1:99999", "localhost"] {
            let pairs = with(&[("RECONCILER_LISTEN", value)]);
            let err = Settings::load_from(None, Needs::Daemon, env(&pairs)).unwrap_err();
            let shown = format!("{:#}", anyhow::Error::new(err));
            assert!(shown.contains("`listen`"), "{shown}");
            assert!(shown.contains(value), "{shown}");
            assert_eq!(shown.matches(value).count(), 1, "said once: {shown}");
            assert!(!shown.contains('\n'), "{shown}");
        }
    }

    #[test]
    fn a_database_url_of_another_scheme_is_refused_without_showing_it() {
        for url in [
            "mysql://u:hunter2@localhost/db",
            "hunter2",
            "postgres:/hunter2",
        ] {
            let pairs = with(&[("DATABASE_URL", url)]);
            for needs in [Needs::Daemon, Needs::Database] {
                let err = Settings::load_from(None, needs, env(&pairs)).unwrap_err();
                let shown = format!("{:#}", anyhow::Error::new(err));
                assert!(shown.contains("database_url"), "{shown}");
                assert!(shown.contains("postgres://"), "{shown}");
                assert!(!shown.contains("hunter2"), "the URL leaked: {shown}");
            }
        }
        for url in ["postgres://u:p@h/db", "postgresql://u:p@h/db"] {
            let pairs = with(&[("DATABASE_URL", url)]);
            assert!(Settings::load_from(None, Needs::Daemon, env(&pairs)).is_ok());
        }
    }

    /// The scope of FULL without its key, plus `pairs`, with `file` as the config file.
    fn scope_of(
        pairs: &[(&'static str, &'static str)],
        file: Option<&str>,
    ) -> Result<Scope, String> {
        static FILES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!("rc-scope-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let n = FILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!("{n}.toml"));
        std::fs::write(&path, file.unwrap_or("")).unwrap();
        let mut all: Vec<_> = FULL
            .iter()
            .copied()
            .filter(|(k, _)| *k != "STRIPE_API_KEY")
            .collect();
        all.extend_from_slice(pairs);
        Settings::load_from(Some(&path), Needs::Daemon, env(&all))
            .and_then(|s| s.scope())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_mode_comes_from_the_key_else_the_setting_else_test() {
        let live = |pairs, file| scope_of(pairs, file).map(|s| s.livemode);
        assert_eq!(live(&[], None), Ok(false));
        assert_eq!(live(&[("STRIPE_API_KEY", "sk_live_x")], None), Ok(true));
        assert_eq!(live(&[("STRIPE_API_KEY", "rk_live_x")], None), Ok(true));
        assert_eq!(live(&[("STRIPE_API_KEY", "sk_test_x")], None), Ok(false));
        assert_eq!(live(&[("STRIPE_API_KEY", "rk_test_x")], None), Ok(false));
        assert_eq!(live(&[], Some("[stripe]\nlivemode = true\n")), Ok(true));
        assert_eq!(
            live(
                &[("STRIPE_API_KEY", "sk_live_x")],
                Some("[stripe]\nlivemode = true\n")
            ),
            Ok(true)
        );
        let err = live(
            &[("STRIPE_API_KEY", "sk_live_secretpart")],
            Some("[stripe]\nlivemode = false\n"),
        )
        .unwrap_err();
        assert!(
            err.contains("stripe.livemode") && err.contains("live key"),
            "{err}"
        );
        assert!(!err.contains("secretpart"), "{err}");
        let err = live(&[("STRIPE_API_KEY", "pk_test_secretpart")], None).unwrap_err();
        assert!(err.contains("STRIPE_API_KEY"), "{err}");
        assert!(!err.contains("secretpart"), "{err}");
    }

    #[test]
    fn the_account_must_be_an_account_id() {
        let scope = scope_of(&[], Some("[stripe]\naccount = \"acct_1Abc\"\n")).unwrap();
        assert_eq!(scope.account.as_deref(), Some("acct_1Abc"));
        let err = scope_of(&[], Some("[stripe]\naccount = \"cus_1\"\n")).unwrap_err();
        assert!(err.contains("stripe.account"), "{err}");
    }
}
