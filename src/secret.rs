//! A value that must never be printed (API keys, webhook secrets, the database URL, the API
//! token): its own module so that `config` and the Stripe client can both use it without
//! knowing each other.

use std::fmt;

use serde::Deserialize;

/// A value that must never be printed: `Debug` shows `[redacted]`, and it has no `Display`.
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
