//! Properties of webhook verification (`stripe::signature`) and of the envelope parser
//! (`stripe::event`). Pure functions only: this binary needs no database.
//!
//! Run with `cargo test --test signature_props`; `PROPTEST_CASES=10000` for a longer run.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use stripe_reconciler::config::Secret;
use stripe_reconciler::stripe::event::Envelope;
use stripe_reconciler::stripe::signature::{SignatureError, SignatureHeader, sign, verify};

/// Most `v1` values `SignatureHeader::parse` keeps (`MAX_V1` in src/stripe/signature.rs).
const MAX_V1: usize = 8;
const HEX: &[u8; 16] = b"0123456789abcdef";

// ---- strategies ------------------------------------------------------------------------

/// 1 to 3 non-empty secrets, any Unicode.
fn secrets() -> impl Strategy<Value = Vec<Secret>> {
    prop::collection::vec("\\PC{1,40}", 1..=3)
        .prop_map(|v| v.into_iter().map(Secret::new).collect())
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..512)
}

fn non_empty_body() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 1..512)
}

/// A clock far from the i64 limits, so `now ± tolerance` needs no saturation.
fn now() -> impl Strategy<Value = i64> {
    -(1i64 << 40)..(1i64 << 40)
}

fn tolerance() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), Just(300u64), 0u64..100_000]
}

/// A tolerance and a signed timestamp within it of `now`, earlier or later.
fn within(now: i64) -> impl Strategy<Value = (u64, i64)> {
    tolerance().prop_flat_map(move |tol| {
        let tol_i = i64::try_from(tol).unwrap();
        (Just(tol), (now - tol_i)..=(now + tol_i))
    })
}

fn v1_of(header: &str) -> &str {
    header
        .split_once(",v1=")
        .expect("sign() writes t=...,v1=...")
        .1
}

fn check(
    header: &str,
    body: &[u8],
    secrets: &[Secret],
    tol: u64,
    now: i64,
) -> Result<i64, SignatureError> {
    verify(Some(header.as_bytes()), body, secrets, tol, now)
}

/// The header parts of an extra scheme: a key that is neither `t` nor `v1`, a value
/// without commas.
fn unknown_scheme() -> impl Strategy<Value = String> {
    ("[a-z][a-z0-9_]{0,5}", "[^,]{0,20}")
        .prop_filter("not a known key", |(k, _)| k != "t" && k != "v1")
        .prop_map(|(k, v)| format!("{k}={v}"))
}

/// Arbitrary JSON, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        "(evt|cus|in|sub)_[A-Za-z0-9]{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Object keys, biased towards the ones the envelope reads.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "id",
            "object",
            "type",
            "created",
            "livemode",
            "api_version",
            "account",
            "data",
            "customer",
        ])
        .prop_map(str::to_owned),
        ".{0,6}",
    ]
}

/// Event-shaped JSON: each envelope field either plausible or an arbitrary value.
fn event_value() -> impl Strategy<Value = Value> {
    let field = |good: BoxedStrategy<Value>| prop_oneof![3 => good, 1 => json_value()];
    (
        field("evt_[A-Za-z0-9]{0,300}".prop_map(Value::from).boxed()),
        field(
            prop_oneof![Just("event".to_owned()), ".{0,8}".boxed()]
                .prop_map(Value::from)
                .boxed(),
        ),
        field(".{0,300}".prop_map(Value::from).boxed()),
        field(any::<i64>().prop_map(Value::from).boxed()),
        field("[a-z]{1,4}_[A-Za-z0-9]{0,8}".prop_map(Value::from).boxed()),
        field(
            prop_oneof![Just("customer".to_owned()), ".{0,8}".boxed()]
                .prop_map(Value::from)
                .boxed(),
        ),
        field(
            prop_oneof![
                "cus_[A-Za-z0-9]{0,8}".prop_map(Value::from),
                "cus_[A-Za-z0-9]{0,8}".prop_map(|id| json!({"id": id, "object": "customer"})),
            ]
            .boxed(),
        ),
        any::<[bool; 4]>(),
    )
        .prop_map(
            |(id, object, ty, created, object_id, object_kind, customer, drop)| {
                let mut inner = Map::new();
                inner.insert("id".into(), object_id);
                inner.insert("object".into(), object_kind);
                if !drop[0] {
                    inner.insert("customer".into(), customer);
                }
                let mut event = Map::new();
                event.insert("id".into(), id);
                if !drop[1] {
                    event.insert("object".into(), object);
                }
                if !drop[2] {
                    event.insert("type".into(), ty);
                }
                event.insert("created".into(), created);
                if !drop[3] {
                    event.insert("data".into(), json!({ "object": inner }));
                }
                Value::Object(event)
            },
        )
}

// ---- verify ----------------------------------------------------------------------------

proptest! {
    #[test]
    fn a_header_signed_with_any_configured_secret_verifies(
        secrets in secrets(),
        pick in any::<prop::sample::Index>(),
        body in body(),
        (now, (tol, t)) in now().prop_flat_map(|now| (Just(now), within(now))),
    ) {
        let header = sign(pick.get(&secrets), t, &body);
        prop_assert_eq!(check(&header, &body, &secrets, tol, now), Ok(t));
    }

    #[test]
    fn flipping_any_body_byte_fails(
        secrets in secrets(),
        pick in any::<prop::sample::Index>(),
        body in non_empty_body(),
        at in any::<prop::sample::Index>(),
        mask in 1u8..=255,
        (now, (tol, t)) in now().prop_flat_map(|now| (Just(now), within(now))),
    ) {
        let header = sign(pick.get(&secrets), t, &body);
        let mut tampered = body.clone();
        tampered[at.index(body.len())] ^= mask;
        prop_assert_eq!(
            check(&header, &tampered, &secrets, tol, now),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn changing_any_hex_digit_of_the_signature_fails(
        secrets in secrets(),
        pick in any::<prop::sample::Index>(),
        body in body(),
        at in 0usize..64,
        step in 1usize..16,
        (now, (tol, t)) in now().prop_flat_map(|now| (Just(now), within(now))),
    ) {
        let header = sign(pick.get(&secrets), t, &body);
        let v1_start = header.len() - 64;
        let mut bytes = header.into_bytes();
        let old = HEX.iter().position(|&d| d == bytes[v1_start + at]).unwrap();
        bytes[v1_start + at] = HEX[(old + step) % 16];
        let tampered = String::from_utf8(bytes).unwrap();
        prop_assert_eq!(
            check(&tampered, &body, &secrets, tol, now),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn moving_t_by_one_second_with_the_old_v1_fails(
        secrets in secrets(),
        pick in any::<prop::sample::Index>(),
        body in body(),
        t in now(),
        later in any::<bool>(),
        tol in 1u64..100_000,
    ) {
        let header = sign(pick.get(&secrets), t, &body);
        let moved = if later { t + 1 } else { t - 1 };
        let tampered = format!("t={moved},v1={}", v1_of(&header));
        prop_assert_eq!(
            check(&tampered, &body, &secrets, tol, t),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn timestamps_beyond_the_tolerance_fail(
        secrets in secrets(),
        pick in any::<prop::sample::Index>(),
        body in body(),
        t in now(),
        tol in tolerance(),
        beyond in 1i64..1_000_000,
        later in any::<bool>(),
    ) {
        let header = sign(pick.get(&secrets), t, &body);
        let gap = i64::try_from(tol).unwrap() + beyond;
        let now = if later { t + gap } else { t - gap };
        prop_assert_eq!(
            check(&header, &body, &secrets, tol, now),
            Err(SignatureError::TimestampOutOfTolerance { tolerance_secs: tol })
        );
    }

    #[test]
    fn extra_schemes_and_several_v1_with_one_right_verify(
        secrets in secrets(),
        pick in any::<prop::sample::Index>(),
        body in body(),
        (now, (tol, t)) in now().prop_flat_map(|now| (Just(now), within(now))),
        wrong in prop::collection::vec(any::<[u8; 32]>(), 0..MAX_V1),
        unknown in prop::collection::vec(unknown_scheme(), 0..4),
        order in any::<u64>(),
        uppercase in any::<bool>(),
    ) {
        let header = sign(pick.get(&secrets), t, &body);
        let right = v1_of(&header);
        let right = if uppercase { right.to_ascii_uppercase() } else { right.to_owned() };
        let mut parts: Vec<String> =
            wrong.iter().map(|w| format!("v1={}", hex::encode(w))).collect();
        parts.extend(unknown);
        parts.push(format!("v1={right}"));
        parts.push(format!("t={t}"));
        // Shuffle with a small LCG seeded from the drawn `order`.
        let mut seed = order;
        for i in (1..parts.len()).rev() {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            parts.swap(i, usize::try_from(seed >> 33).unwrap() % (i + 1));
        }
        let header = parts.join(",");
        prop_assert_eq!(check(&header, &body, &secrets, tol, now), Ok(t), "{}", header);
    }

    #[test]
    fn a_secret_that_is_not_configured_never_verifies(
        secrets in secrets(),
        other in "\\PC{1,40}",
        body in body(),
        (now, (tol, t)) in now().prop_flat_map(|now| (Just(now), within(now))),
    ) {
        prop_assume!(secrets.iter().all(|s| s.expose() != other));
        let header = sign(&Secret::new(other), t, &body);
        prop_assert_eq!(
            check(&header, &body, &secrets, tol, now),
            Err(SignatureError::NoMatchingSignature)
        );
    }
}

// ---- parsers never panic ---------------------------------------------------------------

proptest! {
    #[test]
    fn signature_header_parse_never_panics_on_strings(s in any::<String>()) {
        let _ = SignatureHeader::parse(s.as_bytes());
    }

    #[test]
    fn signature_header_parse_never_panics_on_bytes(
        b in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let _ = SignatureHeader::parse(&b);
    }

    #[test]
    fn signature_header_parse_never_panics_on_near_misses(
        parts in prop::collection::vec(
            "[ \t]{0,2}(t|v1|v0|T|v2|)[ \t]{0,1}(=|==|)[+-]?[0-9a-fA-F]{0,70}[ \t]{0,2}",
            0..12,
        ),
    ) {
        let header = parts.join(",");
        if let Ok(parsed) = SignatureHeader::parse(header.as_bytes()) {
            prop_assert!(!parsed.v1.is_empty() && parsed.v1.len() <= MAX_V1, "{}", header);
        }
    }

    #[test]
    fn envelope_parse_never_panics_on_json_values(value in json_value()) {
        let body = serde_json::to_vec(&value).unwrap();
        if let Ok(envelope) = Envelope::parse(&body) {
            prop_assert!(envelope.id.starts_with("evt_"));
        }
    }

    #[test]
    fn envelope_parse_never_panics_on_event_shaped_values(value in event_value()) {
        let body = serde_json::to_vec(&value).unwrap();
        if let Ok(envelope) = Envelope::parse(&body) {
            prop_assert!(envelope.id.starts_with("evt_"), "{}", value);
            prop_assert!(envelope.id.len() <= 255);
            prop_assert!(!envelope.event_type.is_empty() && envelope.event_type.len() <= 255);
            prop_assert_eq!(Some(envelope.id.as_str()), value["id"].as_str());
        }
    }
}
