//! Quote verification against quotes recorded from swtpm, and every way a
//! quote can be wrong.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "data/keylime/vectors.rs"]
mod vectors;

use keylet_core::keylime::pcr_blob;
use keylet_core::pcr::{HashAlg, PcrValues};
use keylet_core::verify::{QuoteError, check_attest, read_attest, read_signature, verify_quote};

fn values(v: &vectors::Vector) -> PcrValues {
    pcr_blob::decode(&v.pcrs).unwrap()
}

fn verify(v: &vectors::Vector, attest: &[u8], sig: &[u8]) -> Result<(), QuoteError> {
    let vals = values(v);
    verify_quote(attest, sig, &vals, &v.ak_pub, &v.nonce, vals.mask()).map(|_| ())
}

#[test]
fn recorded_ecc_quote_verifies() {
    let v = vectors::load("ecc_sha256_pcr16");
    let vals = values(&v);
    let info = verify_quote(&v.attest, &v.sig, &vals, &v.ak_pub, &v.nonce, vals.mask()).unwrap();
    assert_eq!(info.bank, HashAlg::Sha256);
    assert_eq!(info.selection, vals.mask());
    assert!(info.clock.safe);
    assert_eq!(info.pcr_digest, vals.composite_digest());
}

#[test]
fn recorded_rsa_quotes_verify_with_alloc_only() {
    for name in ["rsa_sha256_pcr16", "rsa_sha256_multi"] {
        let v = vectors::load(name);
        let r = verify(&v, &v.attest, &v.sig);
        if cfg!(feature = "alloc") {
            assert_eq!(r, Ok(()), "{name}");
        } else {
            assert_eq!(r, Err(QuoteError::RsaUnavailable), "{name}");
        }
        // Everything but the signature holds either way.
        check_attest(&v.attest, &v.nonce, &values(&v)).unwrap();
    }
}

#[test]
fn any_flipped_attest_bit_is_rejected() {
    for name in vectors::NAMES {
        let v = vectors::load(name);
        for i in 0..v.attest.len() {
            let mut a = v.attest.clone();
            a[i] ^= 0x01;
            // Without alloc an RSA quote fails with RsaUnavailable at best,
            // so this bites for ECC always and for RSA with alloc.
            assert!(verify(&v, &a, &v.sig).is_err(), "{name} byte {i} accepted");
        }
    }
}

#[test]
fn tampered_signature_is_bad_signature() {
    for name in vectors::NAMES {
        let v = vectors::load(name);
        let mut s = v.sig.clone();
        let last = s.len() - 1;
        s[last] ^= 0x40;
        let r = verify(&v, &v.attest, &s);
        if name.starts_with("rsa") && !cfg!(feature = "alloc") {
            assert_eq!(r, Err(QuoteError::RsaUnavailable));
        } else {
            assert_eq!(r, Err(QuoteError::BadSignature), "{name}");
        }
    }
}

#[test]
fn nonce_mismatch() {
    let v = vectors::load("ecc_sha256_pcr16");
    let vals = values(&v);
    let r = verify_quote(
        &v.attest,
        &v.sig,
        &vals,
        &v.ak_pub,
        b"another-nonce",
        vals.mask(),
    );
    assert_eq!(r, Err(QuoteError::NonceMismatch));
}

#[test]
fn changed_pcr_value_is_digest_mismatch() {
    let v = vectors::load("ecc_sha256_pcr16");
    let mut blob = v.pcrs.clone();
    blob[142] ^= 0xff; // first byte of the first digest
    let vals = pcr_blob::decode(&blob).unwrap();
    assert_eq!(
        check_attest(&v.attest, &v.nonce, &vals),
        Err(QuoteError::DigestMismatch)
    );
}

#[test]
fn other_selection_is_selection_mismatch() {
    let v = vectors::load("ecc_sha256_pcr16");
    let vals = values(&v);
    let wanted = vals.mask().with(23);
    let r = verify_quote(&v.attest, &v.sig, &vals, &v.ak_pub, &v.nonce, wanted);
    assert!(matches!(r, Err(QuoteError::SelectionMismatch { .. })));
    // Values for fewer PCRs than the quote covers.
    let one = PcrValues::new(HashAlg::Sha256, keylet_core::pcr::PcrMask::EMPTY.with(16));
    assert!(matches!(
        check_attest(&v.attest, &v.nonce, &one),
        Err(QuoteError::SelectionMismatch { .. })
    ));
}

#[test]
fn incomplete_values_are_refused() {
    let v = vectors::load("ecc_sha256_pcr16");
    let full = values(&v);
    let partial = PcrValues::new(full.bank(), full.mask());
    assert!(matches!(
        check_attest(&v.attest, &v.nonce, &partial),
        Err(QuoteError::IncompleteValues { .. })
    ));
}

#[test]
fn other_bank_is_bank_mismatch() {
    let v = vectors::load("ecc_sha256_pcr16");
    let vals = PcrValues::new(HashAlg::Sha384, values(&v).mask());
    assert_eq!(
        check_attest(&v.attest, &v.nonce, &vals),
        Err(QuoteError::BankMismatch {
            quoted: HashAlg::Sha256,
            values: HashAlg::Sha384
        })
    );
}

#[test]
fn signature_hash_must_be_the_bank() {
    let v = vectors::load("ecc_sha256_pcr16");
    let mut s = v.sig.clone();
    s[2..4].copy_from_slice(&[0x00, 0x0c]); // SHA-384
    assert_eq!(
        verify(&v, &v.attest, &s),
        Err(QuoteError::HashMismatch {
            signature: HashAlg::Sha384,
            bank: HashAlg::Sha256
        })
    );
}

#[test]
fn signature_algorithm_must_fit_the_key() {
    let ecc = vectors::load("ecc_sha256_pcr16");
    let rsa = vectors::load("rsa_sha256_pcr16");
    let vals = values(&ecc);
    // An RSASSA signature against an ECC AK, and the reverse.
    let r = verify_quote(
        &ecc.attest,
        &rsa.sig,
        &vals,
        &ecc.ak_pub,
        &ecc.nonce,
        vals.mask(),
    );
    assert!(matches!(
        r,
        Err(QuoteError::SignatureKeyMismatch {
            sig_alg: 0x0014,
            key_type: 0x0023
        })
    ));
    let vals = values(&rsa);
    let r = verify_quote(
        &rsa.attest,
        &ecc.sig,
        &vals,
        &rsa.ak_pub,
        &rsa.nonce,
        vals.mask(),
    );
    assert!(matches!(
        r,
        Err(QuoteError::SignatureKeyMismatch {
            sig_alg: 0x0018,
            key_type: 0x0001
        })
    ));
}

#[test]
fn ecdsa_scalars_out_of_range() {
    let v = vectors::load("ecc_sha256_pcr16");
    // P-256 group order n.
    let n: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];
    let sig = read_signature(&v.sig).unwrap();
    let keylet_core::verify::Signature::Ecdsa { s, .. } = sig else {
        panic!("not ECDSA")
    };
    let build = |r: &[u8], s: &[u8]| {
        let mut out = vec![0x00, 0x18, 0x00, 0x0b];
        out.extend_from_slice(&(r.len() as u16).to_be_bytes());
        out.extend_from_slice(r);
        out.extend_from_slice(&(s.len() as u16).to_be_bytes());
        out.extend_from_slice(s);
        out
    };
    for r in [&[0u8; 32][..], &n[..], &[0x01; 33][..]] {
        assert_eq!(
            verify(&v, &v.attest, &build(r, s)),
            Err(QuoteError::ScalarOutOfRange)
        );
    }
}

#[test]
fn clock_not_safe_is_refused() {
    let v = vectors::load("ecc_sha256_pcr16");
    let parsed = read_attest(&v.attest).unwrap();
    // safe sits after magic, type, both TPM2Bs, clock, resetCount, restartCount.
    let at = 4 + 2 + 2 + parsed.qualified_signer.len() + 2 + parsed.extra_data.len() + 16;
    let mut a = v.attest.clone();
    assert_eq!(a[at], 1);
    a[at] = 0;
    assert_eq!(
        check_attest(&a, &v.nonce, &values(&v)),
        Err(QuoteError::ClockNotSafe)
    );
    // verify_quote runs the attestation checks before the costly signature check.
    assert_eq!(verify(&v, &a, &v.sig), Err(QuoteError::ClockNotSafe));
}

#[test]
fn magic_and_type_are_checked() {
    let v = vectors::load("ecc_sha256_pcr16");
    let mut a = v.attest.clone();
    a[0] = 0;
    assert_eq!(
        check_attest(&a, &v.nonce, &values(&v)),
        Err(QuoteError::BadMagic { found: 0x0054_4347 })
    );
    let mut a = v.attest.clone();
    a[5] = 0x14; // TPM_ST_ATTEST_CERTIFY... 0x8014
    assert_eq!(
        check_attest(&a, &v.nonce, &values(&v)),
        Err(QuoteError::WrongType { found: 0x8014 })
    );
}

#[test]
fn truncated_and_extended_parts_are_malformed_with_offsets() {
    let v = vectors::load("ecc_sha256_pcr16");
    let vals = values(&v);
    for cut in 6..v.attest.len() {
        let r = check_attest(&v.attest[..cut], &v.nonce, &vals);
        assert!(
            matches!(r, Err(QuoteError::Malformed { .. })),
            "cut {cut}: {r:?}"
        );
    }
    let mut a = v.attest.clone();
    a.push(0);
    assert!(matches!(
        check_attest(&a, &v.nonce, &vals),
        Err(QuoteError::Malformed { offset, .. }) if offset == v.attest.len()
    ));
    let mut s = v.sig.clone();
    s.push(0);
    assert!(
        matches!(verify(&v, &v.attest, &s), Err(QuoteError::Malformed { offset, .. }) if offset == v.sig.len())
    );
    assert!(matches!(
        verify_quote(
            &v.attest,
            &v.sig,
            &vals,
            &v.ak_pub[..10],
            &v.nonce,
            vals.mask()
        ),
        Err(QuoteError::AkPublic(_))
    ));
}
