//! The JSON:API documents of Keylime's push model (REST API v3.0): the
//! requests keylet sends and the answers it reads from the verifier. Pure
//! functions, so the answer parsers are fuzzed (`fuzz/shell_targets.rs`).
//!
//! Every reader checks what it relies on and names the field that was
//! missing or wrong; nothing here panics on any input.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keylet_core::pcr::{HashAlg, PcrMask};
use serde_json::{Value, json};
use zeroize::Zeroizing;

/// The media type of every request and of the verifier's answers.
pub const JSON_API: &str = "application/vnd.api+json";
/// The longest challenge TPM2_Certify and TPM2_Quote take as qualifyingData.
pub const MAX_CHALLENGE: usize = 64;

/// An answer that is not what the protocol says, naming what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerError(pub String);

impl std::fmt::Display for AnswerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn bad(what: impl Into<String>) -> AnswerError {
    AnswerError(what.into())
}

/// Checks an answer's `Content-Type`: JSON:API, or JSON (`application/json`
/// or a `+json` type), as the verifier's own request check accepts.
///
/// # Errors
///
/// [`AnswerError`] naming the type found.
pub fn check_content_type(content_type: Option<&str>) -> Result<(), AnswerError> {
    let ct = content_type.unwrap_or("");
    let media = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media == "application/json" || media.ends_with("+json") {
        Ok(())
    } else if ct.is_empty() {
        Err(bad(
            "the answer has no Content-Type; expected application/vnd.api+json",
        ))
    } else {
        Err(bad(format!(
            "the answer's Content-Type is {:?}; expected application/vnd.api+json",
            ct.chars().take(80).collect::<String>()
        )))
    }
}

fn parse(body: &[u8]) -> Result<Value, AnswerError> {
    serde_json::from_slice(body).map_err(|e| bad(format!("the answer is not JSON: {e}")))
}

fn at<'a>(v: &'a Value, pointer: &str) -> Result<&'a Value, AnswerError> {
    v.pointer(pointer)
        .filter(|x| !x.is_null())
        .ok_or_else(|| bad(format!("the answer has no {pointer}")))
}

fn text<'a>(v: &'a Value, pointer: &str) -> Result<&'a str, AnswerError> {
    at(v, pointer)?
        .as_str()
        .ok_or_else(|| bad(format!("{pointer} in the answer is not a string")))
}

fn challenge(v: &Value, pointer: &str) -> Result<Vec<u8>, AnswerError> {
    let b64 = text(v, pointer)?;
    let bytes = STANDARD
        .decode(b64)
        .map_err(|e| bad(format!("{pointer} in the answer is not base64: {e}")))?;
    if bytes.is_empty() || bytes.len() > MAX_CHALLENGE {
        return Err(bad(format!(
            "{pointer} in the answer decodes to {} bytes; a TPM takes 1 to {MAX_CHALLENGE}",
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// The first error detail of a JSON:API error document (or a Keylime v2
/// `status`), cut to 300 characters; `None` if the body has none.
#[must_use]
pub fn error_detail(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let from_errors = v.get("errors").and_then(Value::as_array).map(|errors| {
        errors
            .iter()
            .filter_map(|e| {
                let detail = e.get("detail").and_then(Value::as_str);
                let title = e.get("title").and_then(Value::as_str);
                let pointer = e.pointer("/source/pointer").and_then(Value::as_str);
                match (pointer, detail.or(title)) {
                    (Some(p), Some(d)) => Some(format!("{p}: {d}")),
                    (None, Some(d)) => Some(d.to_string()),
                    _ => None,
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    });
    let detail = from_errors
        .filter(|d| !d.is_empty())
        .or_else(|| v.get("status").and_then(Value::as_str).map(str::to_string))?;
    Some(detail.chars().take(300).collect())
}

// ------------------------------------------------------------------ sessions

/// `POST /v3.0/sessions`: keylet offers TPM proof of possession.
#[must_use]
pub fn session_request(agent_id: &str) -> Value {
    json!({"data": {"type": "session", "attributes": {
        "agent_id": agent_id,
        "authentication_supported": [
            {"authentication_class": "pop", "authentication_type": "tpm_pop"}
        ]
    }}})
}

/// The verifier's answer to [`session_request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionChallenge {
    /// The session id, for `PATCH /v3.0/sessions/{id}`.
    pub id: String,
    /// The decoded challenge: TPM2_Certify's qualifyingData.
    pub challenge: Vec<u8>,
}

/// Reads the answer to `POST /v3.0/sessions`.
///
/// # Errors
///
/// [`AnswerError`] naming the missing or malformed field.
pub fn parse_session_challenge(body: &[u8]) -> Result<SessionChallenge, AnswerError> {
    let v = parse(body)?;
    let id = text(&v, "/data/id")?;
    if id.is_empty()
        || id.len() > 128
        || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(bad(
            "/data/id in the answer is not a session id (letters, digits, '-')",
        ));
    }
    let methods = at(&v, "/data/attributes/authentication_requested")?
        .as_array()
        .ok_or_else(|| bad("/data/attributes/authentication_requested is not an array"))?;
    let pop = methods
        .iter()
        .position(|m| m.get("authentication_type").and_then(Value::as_str) == Some("tpm_pop"))
        .ok_or_else(|| bad("the verifier requested no tpm_pop authentication"))?;
    let challenge = challenge(
        &v,
        &format!("/data/attributes/authentication_requested/{pop}/chosen_parameters/challenge"),
    )?;
    Ok(SessionChallenge {
        id: id.to_string(),
        challenge,
    })
}

/// `PATCH /v3.0/sessions/{id}`: the TPM2_Certify proof.
#[must_use]
pub fn session_proof(agent_id: &str, session_id: &str, attest: &[u8], signature: &[u8]) -> Value {
    json!({"data": {"type": "session", "id": session_id, "attributes": {
        "agent_id": agent_id,
        "authentication_provided": [{
            "authentication_class": "pop",
            "authentication_type": "tpm_pop",
            "data": {"message": STANDARD.encode(attest), "signature": STANDARD.encode(signature)}
        }]
    }}})
}

/// The verifier's verdict on the proof.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionOutcome {
    /// Authenticated: the bearer token for later requests.
    Pass {
        /// The token (secret).
        token: Zeroizing<String>,
        /// When it expires, as the verifier wrote it (ISO 8601), if it did.
        expires_at: Option<String>,
    },
    /// Not authenticated (the verifier answers 200 with `evaluation: fail`
    /// when the agent is not enrolled or the challenge expired).
    Fail,
}

/// Reads the answer to the proof `PATCH`.
///
/// # Errors
///
/// [`AnswerError`] naming the missing or malformed field.
pub fn parse_session_outcome(body: &[u8]) -> Result<SessionOutcome, AnswerError> {
    let v = parse(body)?;
    match text(&v, "/data/attributes/evaluation")? {
        "pass" => {
            let token = text(&v, "/data/attributes/token")?;
            if token.is_empty()
                || token.len() > 1024
                || !token.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(bad("/data/attributes/token is not a usable bearer token"));
            }
            let expires_at = v
                .pointer("/data/attributes/token_expires_at")
                .and_then(Value::as_str)
                .map(|s| s.chars().take(64).collect());
            Ok(SessionOutcome::Pass {
                token: Zeroizing::new(token.to_string()),
                expires_at,
            })
        }
        "fail" => Ok(SessionOutcome::Fail),
        other => Err(bad(format!(
            "/data/attributes/evaluation is {:?}, not \"pass\" or \"fail\"",
            other.chars().take(40).collect::<String>()
        ))),
    }
}

// ------------------------------------------------------------- capabilities

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

#[cfg(test)]
mod tests;
