//! The fuzzed parsers of outside bytes, one function per target. Shared by the
//! cargo-fuzz targets (`fuzz_targets/*.rs`) and by
//! `core/tests/corpus_replay.rs`, which replays the checked-in corpus on
//! stable. Each returns whether the input parsed, and checks the properties
//! that must hold for any input that does.

use keylet_core::keylime::agent_id::{AgentId, AgentIdError};
use keylet_core::keylime::{credential, pcr_blob, quote_string, spki};
use keylet_core::pcr::{HashAlg, PcrMask, PcrValues};
use keylet_core::public;
use keylet_core::tpm::{reader, response};
use keylet_core::verify;

/// A parser under test: returns whether the input parsed.
pub type Target = fn(&[u8]) -> bool;

/// The targets, by corpus directory name.
pub const TARGETS: [(&str, Target); 9] = [
    ("tpm_response", tpm_response),
    ("tpms_attest", tpms_attest),
    ("tpmt_signature", tpmt_signature),
    ("tpm2b_public", tpm2b_public),
    ("credential_blob", credential_blob),
    ("pcr_blob", pcr_blob_target),
    ("quote_string", quote_string_target),
    ("agent_id", agent_id),
    ("tpm_certify", tpm_certify),
];

/// A TPM2_Quote response frame: split, then read the quote, then its parts.
pub fn tpm_response(data: &[u8]) -> bool {
    let Ok(r) = response::split(0x158, data) else {
        return false;
    };
    let Ok(q) = reader::quote(r.parameters) else {
        return false;
    };
    let _ = verify::read_attest(q.attest);
    let _ = verify::read_signature(q.signature);
    true
}

/// A TPM2_Certify response frame: split, read certifyInfo and the
/// signature, then the TPMS_ATTEST as a certify attestation. What parses has
/// a Name the self-check compares (and refuses when it differs).
pub fn tpm_certify(data: &[u8]) -> bool {
    let Ok(r) = response::split(0x148, data) else {
        return false;
    };
    let Ok(parts) = reader::certify(r.parameters) else {
        return false;
    };
    let Ok(info) = verify::read_certify(parts.attest) else {
        return false;
    };
    if verify::read_signature(parts.signature).is_err() {
        return false;
    }
    assert!(verify::check_certify(parts.attest, info.extra_data, info.name).is_ok());
    let mut other = [0u8; 80];
    let n = info.name.len().min(other.len());
    other[..n].copy_from_slice(&info.name[..n]);
    other[0] ^= 0xFF;
    assert!(verify::check_certify(parts.attest, info.extra_data, &other[..n.max(1)]).is_err());
    true
}

/// A TPMS_ATTEST, also through check_attest against fixed values.
pub fn tpms_attest(data: &[u8]) -> bool {
    let values = PcrValues::new(HashAlg::Sha256, PcrMask::EMPTY.with(16));
    let _ = verify::check_attest(data, b"nonce", &values);
    verify::read_attest(data).is_ok()
}

/// A TPMT_SIGNATURE.
pub fn tpmt_signature(data: &[u8]) -> bool {
    verify::read_signature(data).is_ok()
}

/// A TPM2B_PUBLIC (and the same bytes as a bare TPMT_PUBLIC); keys that
/// parse are PEM-encoded.
pub fn tpm2b_public(data: &[u8]) -> bool {
    let _ = public::read_tpmt_public(data);
    let Ok(area) = public::read_tpm2b_public(data) else {
        return false;
    };
    let mut pem = [0u8; spki::MAX_PEM_LEN];
    let _ = spki::pem(&area.key, &mut pem);
    true
}

/// A makecredential blob; what parses must be exactly the two TPM2Bs.
pub fn credential_blob(data: &[u8]) -> bool {
    let Ok(blob) = credential::decode(data) else {
        return false;
    };
    assert_eq!(
        blob.id_object.len() + blob.encrypted_secret.len() + 12,
        data.len()
    );
    true
}

/// A PCR blob; what decodes must re-encode to a blob that decodes the same.
pub fn pcr_blob_target(data: &[u8]) -> bool {
    let Ok(values) = pcr_blob::decode(data) else {
        return false;
    };
    let mut out = [0u8; pcr_blob::MAX_PCR_BLOB_LEN];
    let n = pcr_blob::encode(&values, &mut out).expect("decoded values encode");
    assert_eq!(n, data.len());
    assert_eq!(pcr_blob::decode(&out[..n]).as_ref(), Ok(&values));
    true
}

/// A Keylime quote string; its parts go through their own parsers.
pub fn quote_string_target(data: &[u8]) -> bool {
    let Ok(text) = core::str::from_utf8(data) else {
        return false;
    };
    let mut buf = [0u8; 8192];
    let Ok(parts) = quote_string::decode(text, &mut buf) else {
        return false;
    };
    let _ = verify::read_attest(parts.attest);
    let _ = verify::read_signature(parts.signature);
    if let Ok(values) = pcr_blob::decode(parts.pcr_blob) {
        let _ = verify::check_attest(parts.attest, b"nonce", &values);
    }
    true
}

/// Agent-id and UUID text.
pub fn agent_id(data: &[u8]) -> bool {
    let Ok(text) = core::str::from_utf8(data) else {
        return false;
    };
    match AgentId::from_uuid(text) {
        Ok(id) => {
            assert_eq!(id.as_str(), text.to_ascii_lowercase());
            true
        }
        // The placeholder is refused whatever other form it might pass as.
        Err(AgentIdError::Placeholder) => false,
        Err(_) => AgentId::new(text).is_ok(),
    }
}
