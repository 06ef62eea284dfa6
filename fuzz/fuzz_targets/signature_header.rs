//! Arbitrary bytes into `SignatureHeader::parse`.
//!
//! Checks: it never panics; an accepted header was UTF-8, has at least one and at most 8
//! `v1` values, and says the same thing once written back in canonical form.

#![no_main]

use libfuzzer_sys::fuzz_target;
use stripe_reconciler::stripe::signature::SignatureHeader;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = SignatureHeader::parse(data) else {
        return;
    };
    let text = std::str::from_utf8(data).expect("accepted a header that is not UTF-8");
    assert!(
        text.contains("t="),
        "accepted a header without t=: {text:?}"
    );
    assert!(!header.v1.is_empty(), "accepted a header without v1");
    assert!(header.v1.len() <= 8, "kept {} v1 values", header.v1.len());

    let mut canonical = format!("t={}", header.timestamp);
    for sig in &header.v1 {
        canonical.push_str(",v1=");
        canonical.push_str(&hex::encode(sig));
    }
    let again = SignatureHeader::parse(canonical.as_bytes())
        .expect("the canonical form of an accepted header is refused");
    assert_eq!(again, header, "round trip through {canonical:?}");
});
