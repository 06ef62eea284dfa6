//! `Stripe-Signature` verification on the raw body, before any JSON parsing.
//!
//! The header is `t=<unix seconds>,v1=<hex>[,v1=<hex>...]` (other schemes such as `v0` are
//! ignored); each `v1` is the hex HMAC-SHA256 of `"{t}.{raw body}"` keyed by a webhook secret.
//! Any configured secret may match any `v1` (rotation); comparisons are constant-time.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::secret::Secret;

type HmacSha256 = Hmac<Sha256>;

/// Why a delivery was refused; `code()` is the stable reason code clients see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    Missing,
    #[error("the Stripe-Signature header is malformed: {0}")]
    Malformed(&'static str),
    #[error("the signature timestamp is outside the tolerance of {tolerance_secs} s")]
    TimestampOutOfTolerance { tolerance_secs: u64 },
    #[error("no v1 signature matches any configured secret")]
    NoMatchingSignature,
}

impl SignatureError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "missing_signature",
            Self::Malformed(_) => "malformed_signature",
            Self::TimestampOutOfTolerance { .. } => "timestamp_out_of_tolerance",
            Self::NoMatchingSignature => "no_matching_signature",
        }
    }
}

/// A parsed header: the timestamp and every `v1` signature in it.
#[derive(Debug, PartialEq, Eq)]
pub struct SignatureHeader {
    pub timestamp: i64,
    pub v1: Vec<[u8; 32]>,
}

/// Most `v1` entries we look at; Stripe sends one per active secret.
const MAX_V1: usize = 8;

impl SignatureHeader {
    pub fn parse(header: &[u8]) -> Result<Self, SignatureError> {
        let header =
            std::str::from_utf8(header).map_err(|_| SignatureError::Malformed("not UTF-8"))?;
        let mut timestamp = None;
        let mut v1 = Vec::new();
        for part in header.split(',') {
            let (key, value) = part
                .trim()
                .split_once('=')
                .ok_or(SignatureError::Malformed("expected key=value pairs"))?;
            match key {
                "t" => {
                    if timestamp.is_some() {
                        return Err(SignatureError::Malformed("more than one t="));
                    }
                    let t = value
                        .parse::<i64>()
                        .map_err(|_| SignatureError::Malformed("t= is not an integer"))?;
                    timestamp = Some(t);
                }
                "v1" => {
                    let mut sig = [0u8; 32];
                    hex::decode_to_slice(value, &mut sig)
                        .map_err(|_| SignatureError::Malformed("v1= is not 64 hex digits"))?;
                    if v1.len() < MAX_V1 {
                        v1.push(sig);
                    }
                }
                _ => {} // v0 and future schemes
            }
        }
        let timestamp = timestamp.ok_or(SignatureError::Malformed("no t= timestamp"))?;
        if v1.is_empty() {
            return Err(SignatureError::Malformed("no v1= signature"));
        }
        Ok(Self { timestamp, v1 })
    }
}

/// Verifies a delivery. `now` is unix seconds. Returns the signed timestamp.
pub fn verify(
    header: Option<&[u8]>,
    body: &[u8],
    secrets: &[Secret],
    tolerance_secs: u64,
    now: i64,
) -> Result<i64, SignatureError> {
    let header = SignatureHeader::parse(header.ok_or(SignatureError::Missing)?)?;
    if now.abs_diff(header.timestamp) > tolerance_secs {
        return Err(SignatureError::TimestampOutOfTolerance { tolerance_secs });
    }
    let mut matched = subtle::Choice::from(0);
    for secret in secrets {
        let expected = mac(secret, header.timestamp, body);
        for candidate in &header.v1 {
            matched |= expected.ct_eq(candidate);
        }
    }
    if bool::from(matched) {
        Ok(header.timestamp)
    } else {
        Err(SignatureError::NoMatchingSignature)
    }
}

/// The `Stripe-Signature` value Stripe would send for `body` at `timestamp`.
pub fn sign(secret: &Secret, timestamp: i64, body: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac(secret, timestamp, body))
    )
}

fn mac(secret: &Secret, timestamp: i64, body: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000;

    fn secrets() -> Vec<Secret> {
        vec![Secret::new("whsec_old"), Secret::new("whsec_new")]
    }

    #[test]
    fn matches_stripe_reference_vector() {
        // HMAC-SHA256("whsec_test", "1700000000.{}") computed independently with openssl.
        let header = sign(&Secret::new("whsec_test"), 1_700_000_000, b"{}");
        assert_eq!(
            header,
            "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
        );
    }

    #[test]
    fn any_secret_and_any_v1_may_match() {
        let body = b"{\"id\":\"evt_1\"}";
        let good = sign(&Secret::new("whsec_new"), NOW, body);
        let v1 = good.split_once("v1=").unwrap().1;
        let header = format!("t={NOW},v0=abc,v1={},v1={v1}", "00".repeat(32));
        assert_eq!(
            verify(Some(header.as_bytes()), body, &secrets(), 300, NOW),
            Ok(NOW)
        );
    }

    #[test]
    fn each_failure_has_its_code() {
        let body = b"{}";
        let s = secrets();
        let code = |h: Option<&str>, now| {
            verify(h.map(str::as_bytes), body, &s, 300, now)
                .unwrap_err()
                .code()
        };
        assert_eq!(code(None, NOW), "missing_signature");
        assert_eq!(code(Some("garbage"), NOW), "malformed_signature");
        assert_eq!(code(Some("t=abc,v1=00"), NOW), "malformed_signature");
        assert_eq!(code(Some(&format!("t={NOW}")), NOW), "malformed_signature");
        let good = sign(&s[0], NOW, body);
        assert_eq!(code(Some(&good), NOW + 301), "timestamp_out_of_tolerance");
        assert_eq!(code(Some(&good), NOW - 301), "timestamp_out_of_tolerance");
        let other = sign(&Secret::new("whsec_other"), NOW, body);
        assert_eq!(code(Some(&other), NOW), "no_matching_signature");
    }

    #[test]
    fn tolerance_edges_are_inclusive() {
        let body = b"{}";
        let good = sign(&secrets()[0], NOW, body);
        for now in [NOW - 300, NOW + 300] {
            assert!(verify(Some(good.as_bytes()), body, &secrets(), 300, now).is_ok());
        }
    }
}
