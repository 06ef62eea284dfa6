//! The layers, later wins: the embedded defaults, an optional TOML file, then the
//! environment variables of [`ENV_CONTRACT`]; validated for what the command needs.

use std::path::Path;

use super::{ConfigError, Needs, Settings};

const DEFAULTS: &str = include_str!("../../config/defaults.toml");

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
    ("RECONCILER_APPLY_TOGETHER", "engine.apply_together"),
    ("RECONCILER_CATALOG", "catalog"),
    ("RECONCILER_METRICS_REQUIRE_TOKEN", "metrics.require_token"),
    ("STRIPE_API_KEY", "stripe.api_key"),
    ("STRIPE_API_BASE", "stripe.api_base"),
    ("RECONCILER_PAST_DUE_ACCESS", "billing.past_due_access"),
];

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
}
