//! Keylime encodings against quotes, keys and credentials recorded from swtpm
//! with tpm2-tools (see tests/data/keylime/README.md).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "data/keylime/vectors.rs"]
mod vectors;

use keylet_core::keylime::agent_id::AgentId;
use keylet_core::keylime::{auth_tag, credential, pcr_blob, quote_string, spki};
use keylet_core::pcr::{HashAlg, PcrMask, extended_from_zero};
use keylet_core::public::{PublicKey, read_tpm2b_public};
use sha2::Digest as _;

fn mask_of(selection: &str) -> PcrMask {
    let list = selection.split_once(':').unwrap().1;
    list.split(',')
        .fold(PcrMask::EMPTY, |m, p| m.with(p.parse().unwrap()))
}

#[test]
fn pcr_blob_decodes_and_reencodes_byte_for_byte() {
    for v in vectors::all() {
        let values = pcr_blob::decode(&v.pcrs).unwrap();
        assert_eq!(values.bank(), HashAlg::Sha256, "{}", v.name);
        assert_eq!(values.mask(), mask_of(&v.selection), "{}", v.name);
        assert_eq!(pcr_blob::encoded_len(values.mask()), v.pcrs.len());
        let mut out = [0u8; pcr_blob::MAX_PCR_BLOB_LEN];
        let n = pcr_blob::encode(&values, &mut out).unwrap();
        assert_eq!(&out[..n], &v.pcrs[..], "{}", v.name);
        // PCR 16 holds the payload key binding Keylime checks.
        assert_eq!(
            values.get(16).unwrap(),
            &extended_from_zero(HashAlg::Sha256, &v.nk_pem),
            "{}",
            v.name
        );
    }
}

#[test]
fn pcr_blob_rejects_every_truncation_and_extension() {
    let v = vectors::load("rsa_sha256_multi");
    for cut in 0..v.pcrs.len() {
        assert!(pcr_blob::decode(&v.pcrs[..cut]).is_err(), "cut at {cut}");
    }
    let mut long = v.pcrs.clone();
    long.push(0);
    assert!(pcr_blob::decode(&long).is_err());
}

#[test]
fn quote_string_round_trips_the_recorded_parts() {
    for v in vectors::all() {
        let values = pcr_blob::decode(&v.pcrs).unwrap();
        let len = quote_string::encoded_len(v.attest.len(), v.sig.len(), values.mask());
        let mut out = vec![0u8; len];
        let n = quote_string::encode(&v.attest, &v.sig, &values, &mut out).unwrap();
        assert_eq!(n, len);
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.starts_with('r'));
        assert_eq!(text.matches(':').count(), 2);
        let mut buf = [0u8; 4096];
        let parts = quote_string::decode(text, &mut buf).unwrap();
        assert_eq!(parts.attest, &v.attest[..]);
        assert_eq!(parts.signature, &v.sig[..]);
        assert_eq!(parts.pcr_blob, &v.pcrs[..]);
        // A buffer one byte short is refused, not overrun.
        assert!(quote_string::encode(&v.attest, &v.sig, &values, &mut out[..len - 1]).is_err());
    }
}

#[test]
fn spki_pem_matches_tpm2_tools_for_recorded_ak_and_ek() {
    for v in vectors::all() {
        for (public, pem) in [(&v.ak_pub, &v.ak_pem), (&v.ek_pub, &v.ek_pem)] {
            let area = read_tpm2b_public(public).unwrap();
            let mut out = [0u8; spki::MAX_PEM_LEN];
            let n = spki::pem(&area.key, &mut out).unwrap();
            assert_eq!(
                std::str::from_utf8(&out[..n]).unwrap(),
                std::str::from_utf8(pem).unwrap(),
                "{}",
                v.name
            );
        }
    }
}

#[test]
fn hash_ek_is_sha256_of_the_ek_pem() {
    for v in vectors::all() {
        let area = read_tpm2b_public(&v.ek_pub).unwrap();
        let id = AgentId::hash_ek(&area.key).unwrap();
        let expected: String = sha2::Sha256::digest(&v.ek_pem)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(id.as_str(), expected, "{}", v.name);
    }
}

#[test]
fn ak_public_areas_carry_the_requested_scheme() {
    let rsa = vectors::load("rsa_sha256_pcr16");
    let area = read_tpm2b_public(&rsa.ak_pub).unwrap();
    assert!(matches!(area.key, PublicKey::Rsa { modulus, .. } if modulus.len() == 256));
    assert_eq!(area.scheme.hash, Some(HashAlg::Sha256));
    let ecc = vectors::load("ecc_sha256_pcr16");
    let area = read_tpm2b_public(&ecc.ak_pub).unwrap();
    assert!(matches!(area.key, PublicKey::EccP256 { .. }));
    assert_eq!(area.scheme.alg, keylet_core::public::alg::ECDSA);
}

#[test]
fn credential_blobs_from_tpm2_makecredential_split_into_their_tpm2bs() {
    for v in vectors::all() {
        let blob = credential::decode(&v.credential).unwrap();
        // integrityHMAC (TPM2B of a SHA-256 HMAC) + encIdentity of the 32-byte secret.
        assert_eq!(
            blob.id_object.len(),
            2 + 32 + 2 + v.challenge.len(),
            "{}",
            v.name
        );
        let expected_secret = if v.name.starts_with("ecc") { 68 } else { 256 };
        assert_eq!(blob.encrypted_secret.len(), expected_secret, "{}", v.name);
        let mut long = v.credential.clone();
        long.push(0);
        assert_eq!(
            credential::decode(&long),
            Err(credential::CredentialError::TrailingBytes {
                offset: v.credential.len()
            })
        );
        let mut bad = v.credential.clone();
        bad[0] = 0;
        assert!(matches!(
            credential::decode(&bad),
            Err(credential::CredentialError::BadMagic { .. })
        ));
    }
}

#[test]
fn auth_tag_matches_python_hmac() {
    // python3 -c 'import hmac,hashlib,base64; k=base64.b64encode(b"abcdefghijklmnopqrstuvwxyz012345");
    //   print(hmac.new(k, b"d432fbb3-d2f1-4a97-9ef7-75bd81c00001", hashlib.sha384).hexdigest())'
    let tag = auth_tag::auth_tag(
        b"abcdefghijklmnopqrstuvwxyz012345",
        "d432fbb3-d2f1-4a97-9ef7-75bd81c00001",
    )
    .unwrap();
    assert_eq!(tag.as_str(), PYTHON_TAG);
}

const PYTHON_TAG: &str = "fed44396721812625b6a5f4ff1cfbaad15441736b90ceaf01e57eed484bacb5c80d11700bebc934dd141798585db58dd";
