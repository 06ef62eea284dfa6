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
    pub fn parse(body: &[u8]) -> Result<Self, InvalidPayload> {
        // JSON is UTF-8, and serde skips the strings we do not read without checking them.
        std::str::from_utf8(body).map_err(|e| InvalidPayload(format!("not UTF-8: {e}")))?;
        let raw: RawEvent =
            serde_json::from_slice(body).map_err(|e| InvalidPayload(e.to_string()))?;
        if raw.object.as_deref().is_some_and(|o| o != "event") {
            return Err(InvalidPayload("`object` is not \"event\"".into()));
        }
        if !raw.id.starts_with("evt_") {
            return Err(InvalidPayload("`id` is not an event id (evt_...)".into()));
        }
        if raw.event_type.is_empty() {
            return Err(InvalidPayload("`type` is empty".into()));
        }
        let object = raw.data.object;
        let customer_id = match (object.object.as_deref(), object.customer) {
            (Some("customer"), _) => object.id.clone(),
            (_, Some(CustomerRef::Id(id))) => Some(id),
            (_, Some(CustomerRef::Expanded { id })) => Some(id),
            (_, Some(CustomerRef::Other(_)) | None) => None,
        };
        let envelope = Self {
            id: raw.id,
            event_type: raw.event_type,
            created: raw.created,
            livemode: raw.livemode,
            api_version: raw.api_version,
            account: raw.account,
            object_id: object.id,
            customer_id,
        };
        envelope.check_storable()?;
        Ok(envelope)
    }

    /// Refuses what Postgres would refuse in the ingest batch: a NUL in a text column, or
    /// a value too long for its index. One such delivery must not fail the batch it was
    /// committed with, so it is turned away here, with the field it came from.
    fn check_storable(&self) -> Result<(), InvalidPayload> {
        let fields = [
            ("id", Some(&self.id)),
            ("type", Some(&self.event_type)),
            ("api_version", self.api_version.as_ref()),
            ("account", self.account.as_ref()),
            ("data.object.id", self.object_id.as_ref()),
            ("data.object.customer", self.customer_id.as_ref()),
        ];
        for (field, value) in fields {
            let Some(value) = value else { continue };
            if value.contains('\0') {
                return Err(InvalidPayload(format!(
                    "`{field}` contains a NUL character"
                )));
            }
            if value.len() > MAX_FIELD_BYTES {
                return Err(InvalidPayload(format!(
                    "`{field}` is longer than {MAX_FIELD_BYTES} bytes"
                )));
            }
        }
        Ok(())
    }

    /// Why this event is stored but not applied by a daemon serving `scope`, if it is not
    /// for it: a test-mode event must never change a live customer (and the reverse), nor
    /// an event of another (connected) account change ours.
    pub fn out_of_scope(&self, scope: &Scope) -> Option<String> {
        if self.livemode != scope.livemode {
            return Some(format!(
                "livemode mismatch: event is {}, daemon serves {} mode",
                mode_name(self.livemode),
                mode_name(scope.livemode)
            ));
        }
        match (&scope.account, &self.account) {
            (Some(ours), Some(theirs)) if ours != theirs => Some(format!(
                "account mismatch: event is for {theirs}, daemon serves {ours}"
            )),
            _ => None,
        }
    }
}

/// The longest indexed envelope value we store (Stripe's own are far shorter).
pub const MAX_FIELD_BYTES: usize = 255;

/// Which events a daemon applies: one mode, and optionally one account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Live mode (`sk_live_` keys) or test mode.
    pub livemode: bool,
    /// `acct_...`: events carrying another `account` (a connected account's) are skipped.
    /// Events without `account` are the endpoint owner's own and always in scope.
    pub account: Option<String>,
}

/// A stored Stripe event's object: `data.object` read as `T` (a payload that does not fit
/// its type is a permanent failure: the event goes to dead letters naming the field).
pub fn object<T: serde::de::DeserializeOwned>(
    event: &outbox::StoredEvent,
) -> Result<T, outbox::JobError> {
    #[derive(Deserialize)]
    struct Envelope<T> {
        data: Data<T>,
    }
    #[derive(Deserialize)]
    struct Data<T> {
        object: T,
    }
    event.parse::<Envelope<T>>().map(|e| e.data.object)
}

/// The idempotency key of the API request that caused a stored event, if any: ours start
/// with `rc-`, so an event can be recognised as the echo of our own change.
pub fn request_key(event: &outbox::StoredEvent) -> Option<String> {
    #[derive(Deserialize)]
    struct Envelope {
        request: Option<Request>,
    }
    #[derive(Deserialize)]
    struct Request {
        idempotency_key: Option<String>,
    }
    let envelope: Envelope = event.parse().ok()?;
    envelope.request?.idempotency_key
}

fn mode_name(livemode: bool) -> &'static str {
    if livemode { "live" } else { "test" }
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

    #[test]
    fn a_nul_or_an_over_long_value_in_any_indexed_field_is_refused_by_name() {
        let long = "x".repeat(MAX_FIELD_BYTES + 1);
        let cases = [
            (r#"{"id":"evt_\u0000","type":"x","created":1,"data":{"object":{}}}"#.to_owned(), "`id`"),
            (r#"{"id":"evt_1","type":"x\u0000","created":1,"data":{"object":{}}}"#.to_owned(), "`type`"),
            (r#"{"id":"evt_1","type":"x","created":1,"api_version":"\u0000","data":{"object":{}}}"#.to_owned(), "`api_version`"),
            (r#"{"id":"evt_1","type":"x","created":1,"account":"acct_\u0000","data":{"object":{}}}"#.to_owned(), "`account`"),
            (r#"{"id":"evt_1","type":"x","created":1,"data":{"object":{"id":"o\u0000"}}}"#.to_owned(), "`data.object.id`"),
            (r#"{"id":"evt_1","type":"x","created":1,"data":{"object":{"customer":"cus_\u0000"}}}"#.to_owned(), "`data.object.customer`"),
            (r#"{"id":"evt_1","type":"x","created":1,"data":{"object":{"customer":{"id":"cus_\u0000"}}}}"#.to_owned(), "`data.object.customer`"),
            (format!(r#"{{"id":"evt_{long}","type":"x","created":1,"data":{{"object":{{}}}}}}"#), "`id`"),
            (format!(r#"{{"id":"evt_1","type":"{long}","created":1,"data":{{"object":{{}}}}}}"#), "`type`"),
            (format!(r#"{{"id":"evt_1","type":"x","created":1,"account":"{long}","data":{{"object":{{}}}}}}"#), "`account`"),
            (format!(r#"{{"id":"evt_1","type":"x","created":1,"data":{{"object":{{"id":"{long}"}}}}}}"#), "`data.object.id`"),
            (format!(r#"{{"id":"evt_1","type":"x","created":1,"data":{{"object":{{"customer":"{long}"}}}}}}"#), "`data.object.customer`"),
        ];
        for (body, field) in cases {
            let err = Envelope::parse(body.as_bytes()).unwrap_err();
            assert!(err.0.contains(field), "{body}: {err}");
        }
        // A NUL in the object itself is stored as raw bytes: no reason to refuse it.
        let body =
            r#"{"id":"evt_1","type":"x","created":1,"data":{"object":{"description":"a\u0000b"}}}"#;
        assert!(Envelope::parse(body.as_bytes()).is_ok());
    }

    #[test]
    fn scope_skips_the_other_mode_and_other_accounts() {
        let body = br#"{"id":"evt_1","type":"x","created":1,"livemode":true,"account":"acct_b",
            "data":{"object":{}}}"#;
        let e = Envelope::parse(body).unwrap();
        let test_mode = Scope::default();
        assert_eq!(
            e.out_of_scope(&test_mode).as_deref(),
            Some("livemode mismatch: event is live, daemon serves test mode")
        );
        let live_a = Scope {
            livemode: true,
            account: Some("acct_a".into()),
        };
        assert_eq!(
            e.out_of_scope(&live_a).as_deref(),
            Some("account mismatch: event is for acct_b, daemon serves acct_a")
        );
        let live_b = Scope {
            livemode: true,
            account: Some("acct_b".into()),
        };
        assert_eq!(e.out_of_scope(&live_b), None);
        let live_any = Scope {
            livemode: true,
            account: None,
        };
        assert_eq!(e.out_of_scope(&live_any), None);
        let own = Envelope { account: None, ..e };
        assert_eq!(
            own.out_of_scope(&live_a),
            None,
            "no account: the owner's own"
        );
    }
}
