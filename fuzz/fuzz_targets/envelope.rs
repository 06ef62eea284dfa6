//! Arbitrary bytes into `Envelope::parse`.
//!
//! Checks: it never panics; an accepted envelope has an `evt_` id of at most 255 bytes, a
//! non-empty `type` of at most 255 bytes, and the log entry built from it (as
//! `ingest::new_event` does: subject = customer) is ordered by the customer, else the object;
//! when the body is also valid JSON, its `id`, `type` and `created` are the envelope's.

#![no_main]

use libfuzzer_sys::fuzz_target;
use outbox::NewEvent;
use stripe_reconciler::stripe::event::Envelope;

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = Envelope::parse(data) else {
        return;
    };
    assert!(
        envelope.id.starts_with("evt_"),
        "accepted id {:?}",
        envelope.id
    );
    assert!(envelope.id.len() <= 255);
    assert!(!envelope.event_type.is_empty() && envelope.event_type.len() <= 255);
    // `ingest::new_event` is private; these are its column assignments.
    let event = NewEvent {
        id: envelope.id.clone(),
        event_type: envelope.event_type.clone(),
        created: envelope.created,
        subject_id: envelope.customer_id.clone(),
        object_id: envelope.object_id.clone(),
        livemode: envelope.livemode,
        account: envelope.account.clone(),
        api_version: envelope.api_version.clone(),
        skip: None,
        received_via: "webhook",
    };
    assert_eq!(
        event.ordering_key(),
        envelope
            .customer_id
            .as_deref()
            .or(envelope.object_id.as_deref())
    );
    // Not asserted: that an accepted body is JSON. It need not be: bytes that are not
    // UTF-8 inside strings the envelope skips are accepted (first run, see README.md and
    // tests/fuzz_regressions.rs). Where it is JSON, the envelope must agree with it.
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        assert_eq!(value["id"].as_str(), Some(envelope.id.as_str()));
        assert_eq!(value["type"].as_str(), Some(envelope.event_type.as_str()));
        assert_eq!(value["created"].as_i64(), Some(envelope.created));
    }
});
