//! Layered, typed configuration.
//!
//! Order, later wins: the embedded defaults (`config/defaults.toml`), an optional TOML file
//! (`--config PATH` or `RECONCILER_CONFIG`), then the environment variables of the public
//! contract listed in [`ENV_CONTRACT`]. Secrets are [`Secret`]s: `Debug` prints `[redacted]`.
//!
//! One concept a file: the settings' shape and what they answer (here), the layers
//! (`load.rs`), validation and the Stripe scope (`validate.rs`), [`ConfigError`]
//! (`error.rs`).

mod error;
mod load;
#[cfg(test)]
mod tests;
mod validate;

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub use error::ConfigError;
pub use load::ENV_CONTRACT;
pub use outbox::{EngineSettings, IngestSettings};

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

/// What a command needs from the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    /// Ops commands: the database only.
    Database,
    /// `serve` and `check-config`: database, webhook secret and API token.
    Daemon,
}

impl Settings {
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
