//! The event envelope: the few fields we index, read from an authentic raw body.
//!
//! Only the envelope is parsed here; the object itself stays as the raw bytes Stripe sent,
//! so no event is refused because its object's shape changed.

use serde::Deserialize;
use serde::de::IgnoredAny;

/// The indexed fields of a Stripe event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub id: String,
    pub event_type: String,
    /// Unix seconds, as Stripe sends it.
    pub created: i64,
    pub livemode: bool,
    pub api_version: Option<String>,
    pub account: Option<String>,
    pub object_id: Option<String>,
    /// The Stripe customer the object belongs to (the object itself for `customer.*`).
    pub customer_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Stripe event: {0}")]
pub struct InvalidPayload(pub String);

impl Envelope {
    /// The key that orders this event against others: its customer, else its object.
    pub fn ordering_key(&self) -> Option<&str> {
        self.customer_id.as_deref().or(self.object_id.as_deref())
    }

    pub fn parse(body: &[u8]) -> Result<Self, InvalidPayload> {
        // JSON is UTF-8, and serde skips the strings we do not read without checking them.
        std::str::from_utf8(body).map_err(|e| InvalidPayload(format!("not UTF-8: {e}")))?;
        let raw: RawEvent =
            serde_json::from_slice(body).map_err(|e| InvalidPayload(e.to_string()))?;
        if raw.object.as_deref().is_some_and(|o| o != "event") {
            return Err(InvalidPayload("`object` is not \"event\"".into()));
        }
        if !raw.id.starts_with("evt_") || raw.id.len() > 255 {
            return Err(InvalidPayload("`id` is not an event id (evt_...)".into()));
        }
        if raw.event_type.is_empty() || raw.event_type.len() > 255 {
            return Err(InvalidPayload("`type` is empty or too long".into()));
        }
        let object = raw.data.object;
        let customer_id = match (object.object.as_deref(), object.customer) {
            (Some("customer"), _) => object.id.clone(),
            (_, Some(CustomerRef::Id(id))) => Some(id),
            (_, Some(CustomerRef::Expanded { id })) => Some(id),
            (_, Some(CustomerRef::Other(_)) | None) => None,
        };
        Ok(Self {
            id: raw.id,
            event_type: raw.event_type,
            created: raw.created,
            livemode: raw.livemode,
            api_version: raw.api_version,
            account: raw.account,
            object_id: object.id,
            customer_id,
        })
    }
}

#[derive(Deserialize)]
struct RawEvent {
    id: String,
    object: Option<String>,
    #[serde(rename = "type")]
    event_type: String,
    created: i64,
    #[serde(default)]
    livemode: bool,
    api_version: Option<String>,
    account: Option<String>,
    data: RawData,
}

#[derive(Deserialize)]
struct RawData {
    object: RawObject,
}

#[derive(Deserialize)]
struct RawObject {
    id: Option<String>,
    object: Option<String>,
    #[serde(default)]
    customer: Option<CustomerRef>,
}

/// `customer` is an id, an expanded object, or (rarely) something we do not index.
#[derive(Deserialize)]
#[serde(untagged)]
enum CustomerRef {
    Id(String),
    Expanded { id: String },
    Other(IgnoredAny),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_envelope_and_customer() {
        let body = br#"{"id":"evt_1","object":"event","type":"invoice.paid","created":1795000000,
            "livemode":false,"api_version":"2026-09-30.endive","pending_webhooks":1,
            "data":{"object":{"id":"in_1","object":"invoice","customer":"cus_1","lines":{}}}}"#;
        let e = Envelope::parse(body).unwrap();
        assert_eq!(e.id, "evt_1");
        assert_eq!(e.event_type, "invoice.paid");
        assert_eq!(e.created, 1_795_000_000);
        assert_eq!(e.object_id.as_deref(), Some("in_1"));
        assert_eq!(e.customer_id.as_deref(), Some("cus_1"));
        assert_eq!(e.ordering_key(), Some("cus_1"));
    }

    #[test]
    fn customer_objects_order_by_their_own_id_and_expanded_customers_work() {
        let body = br#"{"id":"evt_2","type":"customer.updated","created":1,
            "data":{"object":{"id":"cus_9","object":"customer"}}}"#;
        assert_eq!(
            Envelope::parse(body).unwrap().customer_id.as_deref(),
            Some("cus_9")
        );
        let body = br#"{"id":"evt_3","type":"x.y","created":1,
            "data":{"object":{"id":"o_1","customer":{"id":"cus_8","object":"customer"}}}}"#;
        assert_eq!(
            Envelope::parse(body).unwrap().customer_id.as_deref(),
            Some("cus_8")
        );
    }

    #[test]
    fn rejects_what_is_not_an_event() {
        for body in [
            &b"not json"[..],
            br#"{"id":"evt_1"}"#,
            br#"{"id":"ch_1","type":"x","created":1,"data":{"object":{}}}"#,
            br#"{"id":"evt_1","object":"charge","type":"x","created":1,"data":{"object":{}}}"#,
            br#"{"id":"evt_1","type":"","created":1,"data":{"object":{}}}"#,
        ] {
            assert!(
                Envelope::parse(body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
