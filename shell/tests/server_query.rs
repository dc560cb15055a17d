//! Query-string validation of the quote endpoints.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keylet::server::query::{find, parse_mask};
use keylet::server::{IntegrityQuery, Nonce};

#[test]
fn masks_in_every_spelling_the_verifier_may_use() {
    for (text, bits) in [
        ("0x0", 0),
        ("0", 0),
        ("0x400", 0x400),
        ("400", 0x400),
        ("0XFBFF", 0xfbff),
        ("0xfbff", 0xfbff),
        ("0x408400", 0x40_8400),
        ("0x00000000ffffff", 0xff_ffff),
    ] {
        assert_eq!(parse_mask(text).map(|m| m.bits()), Ok(bits), "{text}");
    }
    for text in ["", "0x", "x400", "0x-1", "+400", "0x 1", "0x1g", "0x400."] {
        let e = parse_mask(text).unwrap_err().to_string();
        assert!(e.starts_with("mask should be a hex encoded"), "{text}: {e}");
    }
    for text in [
        "0x1000000",
        "0xffffffff",
        "0x100000000",
        "0x123456789abcdef01",
    ] {
        let e = parse_mask(text).unwrap_err().to_string();
        assert!(e.starts_with("mask selects a PCR above 23"), "{text}: {e}");
    }
}

#[test]
fn nonces_are_1_to_64_ascii_alphanumerics() {
    assert!(Nonce::parse("a").is_ok());
    assert_eq!(Nonce::parse(&"Z9".repeat(32)).unwrap().as_str().len(), 64);
    let error = |nonce: &str| Nonce::parse(nonce).unwrap_err().to_string();
    assert_eq!(
        error(""),
        "nonce is empty; it must have 1 to 64 alphanumeric characters"
    );
    assert_eq!(
        error(&"a".repeat(65)),
        "Nonce is too long (max size 64): 65"
    );
    for bad in ["ab-c", "é", "a b", "١٢٣"] {
        assert!(
            error(bad).starts_with("nonce should be strictly alphanumeric"),
            "{bad}"
        );
    }
}

#[test]
fn form_urlencoding_is_decoded() {
    assert_eq!(find("a=1&nonce=ab%43d&b", "nonce").as_deref(), Some("abCd"));
    assert_eq!(find("no%6Ece=x", "nonce").as_deref(), Some("x"));
    assert_eq!(find("nonce=a+b", "nonce").as_deref(), Some("a b"));
    assert_eq!(find("nonce=%zz%4", "nonce").as_deref(), Some("%zz%4"));
    assert_eq!(find("nonce", "nonce").as_deref(), Some(""));
    assert_eq!(find("nonce=1&nonce=2", "nonce").as_deref(), Some("1"));
    assert_eq!(find("other=1", "nonce"), None);
    // An encoded '&' or '=' is data, not a separator.
    assert_eq!(
        find("mask=0x1%26partial%3D0", "mask").as_deref(),
        Some("0x1&partial=0")
    );
}

#[test]
fn integrity_query_as_the_verifier_sends_it() {
    let q = IntegrityQuery::parse("nonce=abc123&mask=0x400&partial=1&ima_ml_entry=4096").unwrap();
    assert_eq!(q.nonce.as_str(), "abc123");
    assert_eq!(q.mask.bits(), 0x400);
    assert!(!q.include_pubkey);
    assert_eq!(q.ima_ml_entry, 4096);
    let q = IntegrityQuery::parse("nonce=abc&mask=0&partial=0").unwrap();
    assert!(q.include_pubkey);
    assert_eq!(q.ima_ml_entry, 0, "missing means 0");
    let q = IntegrityQuery::parse("nonce=abc&mask=0&partial=0&ima_ml_entry=-5").unwrap();
    assert_eq!(q.ima_ml_entry, 0, "unparsable means 0");
    assert_eq!(
        IntegrityQuery::parse("nonce=abc&mask=0&partial=")
            .unwrap_err()
            .to_string(),
        "uri must contain key 'partial' and value '0' or '1'"
    );
}
