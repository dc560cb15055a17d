//! The attestation documents: capabilities offered, evidence requested,
//! evidence collected, the next-attestation hint, and the agent's status.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keylet_core::pcr::{HashAlg, PcrMask};
use serde_json::{Value, json};

use super::{AnswerError, at, bad, challenge, parse, text};

/// What keylet can give as evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities<'a> {
    /// The PCR bank and the quote's signing hash (`tpm_hash_alg`).
    pub bank: HashAlg,
    /// The quote signature scheme, Keylime's name (`rsassa`, `ecdsa`).
    pub signature_scheme: &'a str,
    /// The AK type, Keylime's name (`rsa`, `ecc`).
    pub key_algorithm: &'a str,
    /// The AK size in bits.
    pub key_size: u32,
    /// `certification_keys_server_identifier` (`ak`).
    pub server_identifier: &'a str,
    /// The AK's Name (nameAlg and digest).
    pub ak_name: &'a [u8],
    /// The AK's TPM2B_PUBLIC.
    pub ak_public: &'a [u8],
    /// Complete lines in the IMA log now; `None`: no IMA log.
    pub ima_entries: Option<u64>,
    /// The UEFI log's format version; `None`: no UEFI log.
    pub uefi_version: Option<&'a str>,
    /// The boot time, RFC 3339 UTC.
    pub boot_time: &'a str,
}

/// `POST /v3.0/agents/{id}/attestations`.
#[must_use]
pub fn capabilities(c: &Capabilities<'_>) -> Value {
    let hex: String = c.ak_name.iter().map(|b| format!("{b:02x}")).collect();
    let mut evidence = vec![json!({
        "evidence_class": "certification",
        "evidence_type": "tpm_quote",
        "capabilities": {
            "component_version": "2.0",
            "hash_algorithms": [c.bank.name()],
            "signature_schemes": [c.signature_scheme],
            "available_subjects": {c.bank.name(): (0..24).collect::<Vec<u8>>()},
            "certification_keys": [{
                "key_class": "asymmetric",
                "key_algorithm": c.key_algorithm,
                "key_size": c.key_size,
                "server_identifier": c.server_identifier,
                "local_identifier": hex,
                "public": STANDARD.encode(c.ak_public),
                "allowable_hash_algorithms": [c.bank.name()],
                "allowable_signature_schemes": [c.signature_scheme]
            }]
        }
    })];
    if let Some(version) = c.uefi_version {
        evidence.push(json!({
            "evidence_class": "log",
            "evidence_type": "uefi_log",
            "capabilities": {
                "evidence_version": version,
                "supports_partial_access": false,
                "appendable": false,
                "formats": ["application/octet-stream"]
            }
        }));
    }
    if let Some(entries) = c.ima_entries {
        evidence.push(json!({
            "evidence_class": "log",
            "evidence_type": "ima_log",
            "capabilities": {
                "entry_count": entries,
                "supports_partial_access": true,
                "appendable": true,
                "formats": ["text/plain"]
            }
        }));
    }
    json!({"data": {"type": "attestation", "attributes": {
        "evidence_supported": evidence,
        "system_info": {"boot_time": c.boot_time}
    }}})
}

/// One item of evidence the verifier asked for, in its order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    /// A TPM quote.
    Quote {
        /// The decoded challenge: TPM2_Quote's qualifyingData.
        challenge: Vec<u8>,
        /// The PCRs to quote, of keylet's bank.
        pcrs: PcrMask,
    },
    /// IMA log lines.
    Ima {
        /// The first line to send.
        starting_offset: u64,
        /// At most this many lines, if the verifier limits them.
        entry_count: Option<u64>,
    },
    /// The whole UEFI (measured-boot) log.
    Uefi,
}

fn number(v: &Value, pointer: &str) -> Result<Option<u64>, AnswerError> {
    match v.pointer(pointer) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => x.as_u64().map(Some).ok_or_else(|| {
            bad(format!(
                "{pointer} in the answer is not a non-negative integer"
            ))
        }),
    }
}

fn quote_request(
    item: &Value,
    i: usize,
    bank: HashAlg,
    scheme: &str,
) -> Result<Requested, AnswerError> {
    let base = format!("/data/attributes/evidence_requested/{i}/chosen_parameters");
    let params =
        at(item, "/chosen_parameters").map_err(|_| bad(format!("the answer has no {base}")))?;
    let challenge = challenge(params, "/challenge").map_err(|e| bad(format!("{base}: {e}")))?;
    if let Some(h) = params.get("hash_algorithm").and_then(Value::as_str)
        && h != bank.name()
    {
        return Err(bad(format!(
            "{base}/hash_algorithm is {h:?}, but keylet offered only {} (tpm_hash_alg)",
            bank.name()
        )));
    }
    if let Some(s) = params.get("signature_scheme").and_then(Value::as_str)
        && s != scheme
    {
        return Err(bad(format!(
            "{base}/signature_scheme is {s:?}, but keylet offered only {scheme}"
        )));
    }
    let subjects = params
        .get("selected_subjects")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            bad(format!(
                "{base}/selected_subjects is not an object of PCR banks"
            ))
        })?;
    let mut pcrs = PcrMask::EMPTY;
    for (name, list) in subjects {
        let Some(list) = list.as_array() else {
            continue; // null: a bank not chosen
        };
        if name != bank.name() {
            return Err(bad(format!(
                "{base}/selected_subjects asks for PCRs of the {name} bank, but keylet offered \
                 only {}",
                bank.name()
            )));
        }
        for pcr in list {
            let n = pcr
                .as_u64()
                .and_then(|n| u8::try_from(n).ok())
                .filter(|n| *n < 24)
                .ok_or_else(|| {
                    bad(format!(
                        "{base}/selected_subjects/{name} holds {pcr}, not a PCR 0-23"
                    ))
                })?;
            pcrs = pcrs.with(n);
        }
    }
    if pcrs == PcrMask::EMPTY {
        return Err(bad(format!("{base}/selected_subjects selects no PCR")));
    }
    Ok(Requested::Quote { challenge, pcrs })
}

/// Reads the answer to the capabilities `POST` (201): the evidence asked
/// for, in the order it must be sent. `bank` and `scheme` are what keylet
/// offered; the verifier cannot choose anything else.
///
/// # Errors
///
/// [`AnswerError`] naming the missing or malformed field, or evidence keylet
/// did not offer.
pub fn parse_requested(
    body: &[u8],
    bank: HashAlg,
    scheme: &str,
) -> Result<Vec<Requested>, AnswerError> {
    let v = parse(body)?;
    let items = at(&v, "/data/attributes/evidence_requested")?
        .as_array()
        .ok_or_else(|| bad("/data/attributes/evidence_requested is not an array"))?;
    if items.len() > 8 {
        return Err(bad(format!(
            "/data/attributes/evidence_requested has {} items; keylet offered 3",
            items.len()
        )));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let class = item
            .get("evidence_class")
            .and_then(Value::as_str)
            .unwrap_or("");
        let kind = item
            .get("evidence_type")
            .and_then(Value::as_str)
            .unwrap_or("");
        let requested = match (class, kind) {
            ("certification", "tpm_quote") => quote_request(item, i, bank, scheme)?,
            ("log", "ima_log") => {
                let base = format!("/data/attributes/evidence_requested/{i}/chosen_parameters");
                let params = item.get("chosen_parameters").unwrap_or(&Value::Null);
                Requested::Ima {
                    starting_offset: number(params, "/starting_offset")
                        .map_err(|e| bad(format!("{base}: {e}")))?
                        .ok_or_else(|| bad(format!("the answer has no {base}/starting_offset")))?,
                    entry_count: number(params, "/entry_count")
                        .map_err(|e| bad(format!("{base}: {e}")))?,
                }
            }
            ("log", "uefi_log") => Requested::Uefi,
            _ => {
                return Err(bad(format!(
                    "/data/attributes/evidence_requested/{i} asks for {class:?}/{kind:?}, which \
                     keylet did not offer"
                )));
            }
        };
        out.push(requested);
    }
    Ok(out)
}

/// One item of collected evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Collected {
    /// The quote's three base64 texts (TPMS_ATTEST, TPMT_SIGNATURE, PCR blob).
    Quote {
        /// TPMS_ATTEST.
        message: String,
        /// TPMT_SIGNATURE.
        signature: String,
        /// The PCR blob.
        subject_data: String,
    },
    /// IMA log lines (complete, `\n`-terminated).
    Ima {
        /// The lines.
        entries: String,
        /// How many.
        entry_count: u64,
    },
    /// The UEFI log, base64.
    Uefi {
        /// The log.
        entries: String,
    },
}

/// `PATCH` of the attestation: the evidence, in the order asked for.
#[must_use]
pub fn evidence(items: &[Collected]) -> Value {
    let collected: Vec<Value> = items
        .iter()
        .map(|c| match c {
            Collected::Quote {
                message,
                signature,
                subject_data,
            } => json!({
                "evidence_class": "certification",
                "evidence_type": "tpm_quote",
                "data": {"message": message, "signature": signature, "subject_data": subject_data}
            }),
            Collected::Ima {
                entries,
                entry_count,
            } => json!({
                "evidence_class": "log",
                "evidence_type": "ima_log",
                "data": {"entries": entries, "entry_count": entry_count}
            }),
            Collected::Uefi { entries } => json!({
                "evidence_class": "log",
                "evidence_type": "uefi_log",
                "data": {"entries": entries}
            }),
        })
        .collect();
    json!({"data": {"type": "attestation", "attributes": {"evidence_collected": collected}}})
}

/// Reads `meta.seconds_to_next_attestation` of the evidence answer (202):
/// `Ok(None)` if absent.
///
/// # Errors
///
/// [`AnswerError`] if the body is not JSON or the value is not an integer
/// (negative values are returned as they are; the caller clamps them).
pub fn parse_next_attestation(body: &[u8]) -> Result<Option<i64>, AnswerError> {
    let v = parse(body)?;
    match v.pointer("/meta/seconds_to_next_attestation") {
        None | Some(Value::Null) => Ok(None),
        Some(x) => x
            .as_i64()
            .or_else(|| {
                x.as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.round() as i64)
            })
            .map(Some)
            .ok_or_else(|| {
                bad(format!(
                    "/meta/seconds_to_next_attestation is {x}, not a number of seconds"
                ))
            }),
    }
}

/// The verifier's view of this agent (`GET /v2.x/agents/{id}`, which an
/// agent may read with its token): `attestation_status` and the unix time
/// of the last successful attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentStatus {
    /// `PASS`, `FAIL`, `PENDING`, ...
    pub status: String,
    /// `last_successful_attestation` (0: none).
    pub last_success: i64,
}

/// Reads the answer to `GET /v2.x/agents/{id}` (Keylime's v2 envelope).
///
/// # Errors
///
/// [`AnswerError`] naming the missing or malformed field.
pub fn parse_agent_status(body: &[u8]) -> Result<AgentStatus, AnswerError> {
    let v = parse(body)?;
    let status = text(&v, "/results/attestation_status")?;
    let last_success = at(&v, "/results/last_successful_attestation")?
        .as_i64()
        .ok_or_else(|| bad("/results/last_successful_attestation is not an integer"))?;
    Ok(AgentStatus {
        status: status.chars().take(32).collect(),
        last_success,
    })
}
