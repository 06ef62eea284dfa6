//! A timeline entry: what happened to a customer, when, and what made it happen.

use serde::Serialize;
use utoipa::ToSchema;

use super::Time;
use crate::store::activity::Entry;

/// `kind`, `at` and `source`, then the entry's details as the store's triggers wrote them
/// (their keys depend on the kind: `plan_id`, `status`, `from`, `feature_id`, `amount`...).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct TimelineEntry {
    pub kind: String,
    pub at: Time,
    pub source: String,
    /// Stored JSON (written by the triggers), shown as is beside the fields above.
    #[serde(flatten)]
    pub detail: serde_json::Map<String, serde_json::Value>,
}

impl From<Entry> for TimelineEntry {
    fn from(e: Entry) -> Self {
        let mut detail = match e.detail {
            serde_json::Value::Object(detail) => detail,
            _ => serde_json::Map::new(),
        };
        // The entry's own fields win over details of the same name.
        for key in ["kind", "at", "source"] {
            detail.remove(key);
        }
        Self {
            kind: e.kind,
            at: Time(e.at),
            source: e.source,
            detail,
        }
    }
}

impl TimelineEntry {
    /// A detail as text (a string as is, a number or boolean written out); None when absent
    /// or null.
    pub(crate) fn text(&self, key: &str) -> Option<String> {
        match self.detail.get(key)? {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }

    /// A detail that is a string.
    pub(crate) fn str(&self, key: &str) -> Option<&str> {
        self.detail.get(key)?.as_str()
    }

    /// A detail written out as JSON (`null` when absent).
    pub(crate) fn json(&self, key: &str) -> String {
        self.detail
            .get(key)
            .map_or_else(|| "null".to_owned(), ToString::to_string)
    }

    /// A detail that is a whole number.
    pub(crate) fn number(&self, key: &str) -> Option<i64> {
        self.detail.get(key)?.as_i64()
    }
}
