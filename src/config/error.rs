//! What loading the configuration refuses.

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
