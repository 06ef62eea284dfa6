//! Inputs from the fuzz targets in `fuzz/`, replayed through the same functions.
//!
//! Every crash a fuzz run finds becomes a test here, named after the target, with the input
//! inline. The seed corpora in `fuzz/corpus/<target>/seed-*` are replayed too, so a seed
//! that stops meaning what it says (e.g. a header that no longer verifies) is noticed.
//! Pure functions only: this binary needs no database.

use std::path::PathBuf;

use stripe_reconciler::config::Secret;
use stripe_reconciler::stripe::event::Envelope;
use stripe_reconciler::stripe::signature::{SignatureError, SignatureHeader, sign, verify};

/// The secrets the `verify` target configures.
const OLD: &str = "whsec_fuzz_old";
const NEW: &str = "whsec_fuzz_new";
const NOW: i64 = 1_795_000_000;

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut seeds: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("seed-"))
        })
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

fn seed(target: &str, name: &str) -> Vec<u8> {
    seeds(target)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no seed {target}/{name}"))
        .1
}

// ---- seeds -----------------------------------------------------------------------------

#[test]
fn signature_header_seed_is_what_sign_writes() {
    let valid = seed("signature_header", "seed-valid");
    assert_eq!(
        String::from_utf8(valid).unwrap(),
        sign(&Secret::new(OLD), NOW, b"{}")
    );
}

#[test]
fn signature_header_seeds_parse_as_intended() {
    for (name, bytes) in seeds("signature_header") {
        let parsed = SignatureHeader::parse(&bytes);
        assert!(parsed.is_ok(), "{name}: {parsed:?}");
    }
    let nine = SignatureHeader::parse(&seed("signature_header", "seed-nine-v1")).unwrap();
    assert_eq!(nine.v1.len(), 8, "only the first 8 v1 values are kept");
}

#[test]
fn verify_seed_with_a_real_header_verifies() {
    // Layout in fuzz/fuzz_targets/verify.rs: flags, i16 delta, i64 clock, u16 header length.
    let data = seed("verify", "seed-valid-header");
    let clock = i64::from_le_bytes(data[3..11].try_into().unwrap());
    let len = usize::from(u16::from_le_bytes([data[11], data[12]]));
    let (header, body) = data[13..].split_at(len);
    let secrets = [Secret::new(OLD), Secret::new(NEW)];
    assert_eq!(
        verify(Some(header), body, &secrets, 300, clock),
        Ok(NOW),
        "{}",
        String::from_utf8_lossy(header)
    );
}

#[test]
fn envelope_seeds_parse_as_events() {
    for (name, bytes) in seeds("envelope") {
        let envelope = Envelope::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(envelope.id.starts_with("evt_"), "{name}");
    }
}

// ---- edges the fuzz runs exercised -----------------------------------------------------

/// `|now - t|` at the ends of i64: no overflow, and a tolerance of `u64::MAX` admits it.
#[test]
fn verify_extreme_clock_and_timestamp() {
    let secrets = [Secret::new(OLD)];
    let header = sign(&secrets[0], i64::MAX, b"{}");
    assert_eq!(
        verify(Some(header.as_bytes()), b"{}", &secrets, u64::MAX, i64::MIN),
        Ok(i64::MAX)
    );
    assert_eq!(
        verify(
            Some(header.as_bytes()),
            b"{}",
            &secrets,
            u64::MAX - 1,
            i64::MIN
        ),
        Err(SignatureError::TimestampOutOfTolerance {
            tolerance_secs: u64::MAX - 1
        })
    );
}

// ---- crashes found by fuzzing ----------------------------------------------------------

/// `envelope` target, first run, after 958 executions
/// (`fuzz/artifacts/envelope/crash-15614b381db9c6855b882b8628bfcff641a79597`): the
/// `checkout.session.expired` fixture with sixteen 0xE9 bytes (Latin-1 "é", not UTF-8)
/// put in `data.object.branding_settings.display_name`. `Envelope::parse` accepts it,
/// though it is not JSON (RFC 8259 §8.1 requires UTF-8; serde_json refuses it as a
/// `Value`): the bytes sit in a string the envelope skips, and serde skips strings
/// without checking their UTF-8. Not a panic; the harness asserted "accepted ⇒ JSON".
/// Minimised to the smallest event the envelope accepts.
const NOT_UTF8_IN_A_SKIPPED_STRING: &[u8] =
    b"{\"id\":\"evt_1\",\"type\":\"x\",\"created\":1,\"data\":{\"object\":{\"name\":\"\xE9\"}}}";

#[test]
fn envelope_not_utf8_in_a_skipped_string_does_not_panic() {
    assert!(serde_json::from_slice::<serde_json::Value>(NOT_UTF8_IN_A_SKIPPED_STRING).is_err());
    // What the fuzz target asserts today: no panic, and an accepted id is an event id.
    if let Ok(envelope) = Envelope::parse(NOT_UTF8_IN_A_SKIPPED_STRING) {
        assert!(envelope.id.starts_with("evt_"));
    }
}

/// The fix the crash led to: a body that is not UTF-8 is not a Stripe event
/// (`invalid_payload`), wherever the bad bytes sit.
#[test]
fn envelope_refuses_a_body_that_is_not_json() {
    assert!(Envelope::parse(NOT_UTF8_IN_A_SKIPPED_STRING).is_err());
}
