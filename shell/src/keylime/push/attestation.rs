//! The attestation documents: capabilities offered, evidence collected, the
//! next-attestation hint, and the agent's status.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keylet_core::keylime::hex::Lower;
use keylet_core::pcr::HashAlg;
use serde::{Deserialize, Serialize};

use super::document;
use crate::keylime::{EnvelopeIn, JsonError, decode};

/// What keylet can give as evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities<'a> {
    /// The PCR bank and the quote's signing hash (`tpm_hash_alg`).
    pub(crate) bank: HashAlg,
    /// The quote signature scheme, Keylime's name (`rsassa`, `ecdsa`).
    pub(crate) signature_scheme: &'a str,
    /// The AK type, Keylime's name (`rsa`, `ecc`), and its size in bits.
    pub(crate) key_algorithm: &'a str,
    pub(crate) key_size: u32,
    /// `certification_keys_server_identifier` (`ak`).
    pub(crate) server_identifier: &'a str,
    /// The AK's Name (nameAlg and digest) and TPM2B_PUBLIC.
    pub(crate) ak_name: &'a [u8],
    pub(crate) ak_public: &'a [u8],
    /// Complete lines in the IMA log now; `None`: no IMA log.
    pub(crate) ima_entries: Option<u64>,
    /// The UEFI log's format version; `None`: no UEFI log.
    pub(crate) uefi_version: Option<&'a str>,
    /// The boot time, RFC 3339 UTC.
    pub(crate) boot_time: &'a str,
}

#[derive(Debug, Serialize)]
struct Offered<'a> {
    evidence_supported: Vec<Supported<'a>>,
    system_info: SystemInfo<'a>,
}

#[derive(Debug, Serialize)]
struct SystemInfo<'a> {
    boot_time: &'a str,
}

#[derive(Debug, Serialize)]
struct Supported<'a> {
    evidence_class: &'static str,
    evidence_type: &'static str,
    capabilities: Offer<'a>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Offer<'a> {
    Quote(QuoteOffer<'a>),
    Log(LogOffer<'a>),
}

#[derive(Debug, Serialize)]
struct QuoteOffer<'a> {
    component_version: &'static str,
    hash_algorithms: [&'static str; 1],
    signature_schemes: [&'a str; 1],
    /// Bank to PCR numbers: the verifier requires an object, not a list.
    available_subjects: BTreeMap<&'static str, Vec<u8>>,
    certification_keys: [CertificationKey<'a>; 1],
}

#[derive(Debug, Serialize)]
struct CertificationKey<'a> {
    key_class: &'static str,
    key_algorithm: &'a str,
    key_size: u32,
    server_identifier: &'a str,
    local_identifier: String,
    public: String,
    allowable_hash_algorithms: [&'static str; 1],
    allowable_signature_schemes: [&'a str; 1],
}

#[derive(Debug, Serialize)]
struct LogOffer<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    evidence_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entry_count: Option<u64>,
    supports_partial_access: bool,
    appendable: bool,
    formats: [&'static str; 1],
}

/// `POST /v3.0/agents/{id}/attestations`.
#[must_use]
pub fn capabilities(c: &Capabilities<'_>) -> Vec<u8> {
    let bank = c.bank.name();
    let supported = |(evidence_class, evidence_type), capabilities| Supported {
        evidence_class,
        evidence_type,
        capabilities,
    };
    let quote = Offer::Quote(QuoteOffer {
        component_version: "2.0",
        hash_algorithms: [bank],
        signature_schemes: [c.signature_scheme],
        available_subjects: BTreeMap::from([(bank, (0..24).collect())]),
        certification_keys: [CertificationKey {
            key_class: "asymmetric",
            key_algorithm: c.key_algorithm,
            key_size: c.key_size,
            server_identifier: c.server_identifier,
            local_identifier: Lower(c.ak_name).to_string(),
            public: STANDARD.encode(c.ak_public),
            allowable_hash_algorithms: [bank],
            allowable_signature_schemes: [c.signature_scheme],
        }],
    });
    // A log with a line count (IMA) is read from an offset and grows.
    let log = |kind, evidence_version, entry_count: Option<u64>, format| {
        let log = LogOffer {
            evidence_version,
            entry_count,
            supports_partial_access: entry_count.is_some(),
            appendable: entry_count.is_some(),
            formats: [format],
        };
        supported(kind, Offer::Log(log))
    };
    let evidence_supported = [
        Some(supported(QUOTE, quote)),
        c.uefi_version
            .map(|v| log(UEFI, Some(v), None, "application/octet-stream")),
        c.ima_entries.map(|n| log(IMA, None, Some(n), "text/plain")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let system_info = SystemInfo {
        boot_time: c.boot_time,
    };
    let offered = Offered {
        evidence_supported,
        system_info,
    };
    document("attestation", None, offered)
}

/// `evidence_class` and `evidence_type` of each kind of evidence.
pub(super) const QUOTE: (&str, &str) = ("certification", "tpm_quote");
pub(super) const IMA: (&str, &str) = ("log", "ima_log");
pub(super) const UEFI: (&str, &str) = ("log", "uefi_log");

/// One item of collected evidence, serialized as its `data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Collected {
    /// The quote's three base64 texts: TPMS_ATTEST, TPMT_SIGNATURE, PCR blob.
    Quote {
        message: String,
        signature: String,
        subject_data: String,
    },
    /// IMA log lines (complete, `\n`-terminated) and how many.
    Ima { entries: String, entry_count: u64 },
    /// The UEFI log, base64.
    Uefi { entries: String },
}

#[derive(Debug, Serialize)]
struct CollectedAttributes<'a> {
    evidence_collected: Vec<CollectedItem<'a>>,
}

#[derive(Debug, Serialize)]
struct CollectedItem<'a> {
    evidence_class: &'static str,
    evidence_type: &'static str,
    data: &'a Collected,
}

/// `PATCH` of the attestation: the evidence, in the order asked for.
#[must_use]
pub fn evidence<'a>(items: &'a [Collected]) -> Vec<u8> {
    let item = |data: &'a Collected| {
        let (evidence_class, evidence_type) = match data {
            Collected::Quote { .. } => QUOTE,
            Collected::Ima { .. } => IMA,
            Collected::Uefi { .. } => UEFI,
        };
        CollectedItem {
            evidence_class,
            evidence_type,
            data,
        }
    };
    let evidence_collected = items.iter().map(item).collect();
    let attributes = CollectedAttributes { evidence_collected };
    document("attestation", None, attributes)
}

#[derive(Debug, Deserialize)]
struct Accepted {
    meta: Option<Meta>,
}

#[derive(Debug, Deserialize)]
struct Meta {
    /// Whole or not (a whole number is read as a float too).
    seconds_to_next_attestation: Option<f64>,
}

/// Reads `meta.seconds_to_next_attestation` of the evidence answer (202),
/// rounded: `Ok(None)` if absent; negative values are returned as they are
/// (the caller clamps them).
///
/// # Errors
///
/// [`JsonError`] if the body is not JSON or the value is not a number.
pub fn parse_next_attestation(body: &[u8]) -> Result<Option<i64>, JsonError> {
    let meta = decode::<Accepted>(body)?.meta;
    // Saturating: a value beyond i64 becomes its bound.
    Ok(meta.and_then(|m| Some(m.seconds_to_next_attestation?.round() as i64)))
}

/// The verifier's view of this agent (`GET /v2.x/agents/{id}`, which an
/// agent may read with its token).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AgentStatus {
    /// `PASS`, `FAIL`, `PENDING`, ... (cut to 32 characters).
    pub attestation_status: String,
    /// Unix time (0: none).
    pub(crate) last_successful_attestation: i64,
}

/// Reads the answer to `GET /v2.x/agents/{id}` (Keylime's v2 envelope).
///
/// # Errors
///
/// [`JsonError`] naming the missing or malformed field.
pub fn parse_agent_status(body: &[u8]) -> Result<AgentStatus, JsonError> {
    let mut status = decode::<EnvelopeIn<AgentStatus>>(body)?
        .results
        .ok_or_else(|| JsonError::at("/results", "missing"))?;
    status.attestation_status = status.attestation_status.chars().take(32).collect();
    Ok(status)
}
