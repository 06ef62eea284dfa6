//! How Stripe writes fields, read leniently: an id or the object expanded in its place,
//! lists, `null` where a default applies, links, timestamps, metadata.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

pub type Metadata = HashMap<String, String>;

/// `null` read as the default, as absent is: where Stripe's spec says nullable, and where a
/// field we only use for display could be. Used on every defaulted field, so `null` never
/// makes an event dead.
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// An id, or the expanded object carrying it.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Expandable {
    Id(String),
    Object { id: String },
}

impl Expandable {
    pub fn id(&self) -> &str {
        match self {
            Self::Id(id) | Self::Object { id } => id,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct List<T> {
    #[serde(default, deserialize_with = "null_as_default")]
    pub data: Vec<T>,
}

impl<T> Default for List<T> {
    fn default() -> Self {
        Self { data: Vec::new() }
    }
}

/// Whether a URL from Stripe's data may become a link (the console's, an attach's
/// `action_url`): `https`, or `http` to a loopback host (the fake Stripe of tests and
/// development). Anything else (`javascript:`, `data:`, a relative path) is dropped.
pub fn safe_link(url: &str) -> bool {
    let Ok(uri) = url.parse::<hyper::Uri>() else {
        return false;
    };
    let host = uri.host().unwrap_or_default();
    match uri.scheme_str() {
        Some("https") => !host.is_empty(),
        Some("http") => matches!(host, "127.0.0.1" | "localhost" | "[::1]"),
        _ => false,
    }
}

/// An optional link, kept only when [`safe_link`].
pub(crate) fn link<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.filter(|url| safe_link(url)))
}

pub fn timestamp(secs: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(secs, 0)
}
