//! Stripe's form-encoded parameters: `a=1&metadata[k]=v&items[0][price]=p`.
//!
//! A [`Form`] keeps the decoded pairs in order. Nested parameters are read by taking a
//! sub-form (`items[0][price]` under `items` is element 0's `price`), so one set of
//! accessors serves every level.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Form(Vec<(String, String)>);

impl Form {
    /// Decodes a form body or a query string (percent-decoding, `+` as space).
    pub(super) fn parse(bytes: &[u8]) -> Self {
        Self(form_urlencoded::parse(bytes).into_owned().collect())
    }

    pub(super) fn into_pairs(self) -> Vec<(String, String)> {
        self.0
    }

    /// The pairs sorted, so two encodings of the same parameters compare equal.
    pub(super) fn fingerprint(&self) -> Vec<(String, String)> {
        let mut pairs = self.0.clone();
        pairs.sort();
        pairs
    }

    /// The last value given for `key`.
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn get_i64(&self, key: &str) -> Result<Option<i64>, String> {
        self.get(key)
            .map(|v| v.parse().map_err(|_| format!("Invalid integer: {v}")))
            .transpose()
    }

    pub(super) fn get_bool(&self, key: &str) -> Option<bool> {
        self.get(key).map(|v| v == "true")
    }

    /// Whether `key` or any `key[...]` was sent.
    pub(super) fn has(&self, key: &str) -> bool {
        self.0
            .iter()
            .any(|(k, _)| k == key || (k.starts_with(key) && k[key.len()..].starts_with('[')))
    }

    /// The parameters nested under `prefix`, re-rooted: `prefix[a][b]=v` becomes `a[b]=v`.
    pub(super) fn sub(&self, prefix: &str) -> Form {
        let open = format!("{prefix}[");
        Form(
            self.0
                .iter()
                .filter_map(|(k, v)| {
                    let rest = k.strip_prefix(&open)?;
                    let (head, tail) = rest.split_once(']')?;
                    Some((format!("{head}{tail}"), v.clone()))
                })
                .collect(),
        )
    }

    /// The elements of the array `prefix[0][..]`, `prefix[1][..]`, in index order.
    pub(super) fn list(&self, prefix: &str) -> Vec<Form> {
        let sub = self.sub(prefix);
        let mut elements: BTreeMap<usize, Form> = BTreeMap::new();
        for (k, v) in sub.0 {
            let (index, rest) = match k.split_once('[') {
                Some((index, rest)) => (index.to_owned(), format!("[{rest}")),
                None => (k.clone(), String::new()),
            };
            let Ok(index) = index.parse::<usize>() else {
                continue;
            };
            // `[price]` becomes `price`, `[metadata][k]` becomes `metadata[k]`.
            let key = match rest.strip_prefix('[').and_then(|r| r.split_once(']')) {
                Some((head, tail)) => format!("{head}{tail}"),
                None => rest,
            };
            elements.entry(index).or_default().0.push((key, v));
        }
        elements.into_values().collect()
    }

    /// The values of the list `prefix`, in order: `prefix[0]=a&prefix[1]=b` (as async-stripe
    /// encodes lists), `prefix[]=a&prefix[]=b`, or a single `prefix=a`.
    pub(super) fn values(&self, prefix: &str) -> Vec<&str> {
        let mut indexed: Vec<(usize, usize, &str)> = Vec::new();
        for (position, (k, v)) in self.0.iter().enumerate() {
            let index = if k == prefix {
                Some(0)
            } else {
                k.strip_prefix(prefix)
                    .and_then(|rest| rest.strip_prefix('['))
                    .and_then(|rest| rest.strip_suffix(']'))
                    .and_then(|i| {
                        if i.is_empty() {
                            Some(0)
                        } else {
                            i.parse().ok()
                        }
                    })
            };
            if let Some(index) = index {
                indexed.push((index, position, v.as_str()));
            }
        }
        indexed.sort();
        indexed.into_iter().map(|(_, _, v)| v).collect()
    }

    /// `prefix[k]=v` pairs as a JSON object, or `None` when `prefix` was not sent.
    /// An empty value means "unset this key" (`Some` with a null), as Stripe does on updates;
    /// `prefix=` alone (empty) means "clear all".
    pub(super) fn metadata(&self, prefix: &str) -> Option<MetadataUpdate> {
        if !self.has(prefix) {
            return None;
        }
        if self.get(prefix) == Some("") && self.sub(prefix).0.is_empty() {
            return Some(MetadataUpdate::Clear);
        }
        let mut set = Map::new();
        for (k, v) in self.sub(prefix).0 {
            let value = if v.is_empty() {
                Value::Null
            } else {
                Value::String(v)
            };
            set.insert(k, value);
        }
        Some(MetadataUpdate::Merge(set))
    }
}

/// What a request asks to do with an object's metadata.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum MetadataUpdate {
    Clear,
    /// Keys to set; a null value removes the key.
    Merge(Map<String, Value>),
}

impl MetadataUpdate {
    /// Applies the update to `metadata` (an object; anything else is replaced).
    pub(super) fn apply(&self, metadata: &mut Value) {
        if !metadata.is_object() {
            *metadata = Value::Object(Map::new());
        }
        let map = metadata.as_object_mut().expect("made an object above");
        match self {
            Self::Clear => map.clear(),
            Self::Merge(set) => {
                for (k, v) in set {
                    if v.is_null() {
                        map.remove(k);
                    } else {
                        map.insert(k.clone(), v.clone());
                    }
                }
            }
        }
    }

    /// The metadata a new object gets from this update.
    pub(super) fn new_object(update: Option<&Self>) -> Value {
        let mut metadata = Value::Object(Map::new());
        if let Some(update) = update {
            update.apply(&mut metadata);
        }
        metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_parameters_are_read_by_level() {
        let form = Form::parse(
            b"customer=cus_1&items%5B0%5D%5Bprice%5D=price_a&items%5B1%5D%5Bprice%5D=price_b\
              &items%5B0%5D%5Bquantity%5D=2&metadata%5Buser%5D=u+1\
              &subscription_data%5Bmetadata%5D%5Bplan%5D=pro",
        );
        assert_eq!(form.get("customer"), Some("cus_1"));
        let items = form.list("items");
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].get("price"), Some("price_a"));
        assert_eq!(items[0].get_i64("quantity"), Ok(Some(2)));
        assert_eq!(items[1].get("price"), Some("price_b"));
        let mut metadata = Value::Null;
        form.metadata("metadata").unwrap().apply(&mut metadata);
        assert_eq!(metadata, serde_json::json!({"user": "u 1"}));
        let nested = form.sub("subscription_data").metadata("metadata").unwrap();
        let mut metadata = Value::Null;
        nested.apply(&mut metadata);
        assert_eq!(metadata, serde_json::json!({"plan": "pro"}));
        assert!(form.metadata("other").is_none());
    }

    #[test]
    fn lists_of_values_are_read_in_index_order() {
        let form = Form::parse(b"expand%5B1%5D=b&expand%5B0%5D=a&other=x");
        assert_eq!(form.values("expand"), ["a", "b"]);
        let form = Form::parse(b"expand[]=a&expand[]=b&expander=no");
        assert_eq!(form.values("expand"), ["a", "b"]);
        assert!(Form::parse(b"x=1").values("expand").is_empty());
    }

    #[test]
    fn empty_values_unset_and_empty_parent_clears() {
        let mut metadata = serde_json::json!({"a": "1", "b": "2"});
        Form::parse(b"metadata[a]=&metadata[c]=3")
            .metadata("metadata")
            .unwrap()
            .apply(&mut metadata);
        assert_eq!(metadata, serde_json::json!({"b": "2", "c": "3"}));
        Form::parse(b"metadata=")
            .metadata("metadata")
            .unwrap()
            .apply(&mut metadata);
        assert_eq!(metadata, serde_json::json!({}));
    }
}
