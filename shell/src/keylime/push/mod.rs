//! The JSON:API documents of Keylime's push model (REST API v3.0): the
//! requests keylet sends and the answers it reads from the verifier, typed.
//! Pure functions, so the answer readers are fuzzed (`fuzz/shell_targets.rs`).
//!
//! Every reader checks what it relies on and names the JSON path of what
//! was missing or wrong; nothing here panics on any input.

mod attestation;
mod requested;
mod session;

pub use attestation::{
    AgentStatus, Capabilities, Collected, capabilities, evidence, parse_agent_status,
    parse_next_attestation,
};
pub use requested::{Requested, parse_requested};
pub use session::{
    SessionChallenge, SessionOutcome, parse_session_challenge, parse_session_outcome,
    session_proof, session_request,
};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::{JsonError, decode};

/// The media type of every request and of the verifier's answers.
pub(crate) const JSON_API: &str = "application/vnd.api+json";
/// The longest challenge TPM2_Certify and TPM2_Quote take as qualifyingData.
pub const MAX_CHALLENGE: usize = 64;

/// A request document with one resource, serialized.
fn document<A: Serialize>(kind: &'static str, id: Option<&str>, attributes: A) -> Vec<u8> {
    let data = Resource {
        kind,
        id,
        attributes,
    };
    // Only strings, numbers and string-keyed maps: serde_json cannot fail.
    serde_json::to_vec(&Single { data }).unwrap_or_default()
}

/// A JSON:API document with one resource.
#[derive(Debug, Serialize, Deserialize)]
struct Single<T> {
    data: T,
}

/// A resource keylet sends.
#[derive(Debug, Serialize)]
struct Resource<'a, A> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    attributes: A,
}

/// A resource keylet reads (its `type` is not checked).
#[derive(Debug, Deserialize)]
struct Read<A> {
    attributes: A,
}

/// Checks an answer's `Content-Type`: JSON:API, or JSON (`application/json`
/// or a `+json` type), as the verifier's own request check accepts.
///
/// # Errors
///
/// [`JsonError`] naming the type found.
pub fn check_content_type(content_type: Option<&str>) -> Result<(), JsonError> {
    let ct = content_type.unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim();
    let media = media.to_ascii_lowercase();
    if media == "application/json" || media.ends_with("+json") {
        return Ok(());
    }
    let found = match ct {
        "" => "the answer has no Content-Type".to_string(),
        ct => format!(
            "the answer's Content-Type is {:?}",
            ct.chars().take(80).collect::<String>()
        ),
    };
    Err(JsonError::at("", format!("{found}; expected {JSON_API}")))
}

/// A base64 challenge at `path`, decoded and checked against what a TPM takes.
fn challenge(b64: Option<&str>, path: &str) -> Result<Vec<u8>, JsonError> {
    let b64 = b64.ok_or_else(|| JsonError::at(path, "missing"))?;
    let bytes = STANDARD
        .decode(b64)
        .map_err(|e| JsonError::at(path, format!("not base64: {e}")))?;
    let n = bytes.len();
    if n == 0 || n > MAX_CHALLENGE {
        let why = format!("decodes to {n} bytes; a TPM takes 1 to {MAX_CHALLENGE}");
        return Err(JsonError::at(path, why));
    }
    Ok(bytes)
}

/// A JSON:API error document, or a Keylime v2 envelope's `status`.
#[derive(Debug, Deserialize)]
struct ErrorDocument {
    #[serde(default)]
    errors: Vec<ErrorObject>,
    status: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorObject {
    detail: Option<String>,
    title: Option<String>,
    source: Option<ErrorSource>,
}

#[derive(Debug, Deserialize)]
struct ErrorSource {
    pointer: Option<String>,
}

/// The error details of a JSON:API error document (or a Keylime v2
/// `status`), cut to 300 characters; `None` if the body has none.
#[must_use]
pub fn error_detail(body: &[u8]) -> Option<String> {
    let doc: ErrorDocument = decode(body).ok()?;
    let from_errors = doc
        .errors
        .into_iter()
        .filter_map(|e| {
            let text = e.detail.or(e.title)?;
            Some(match e.source.and_then(|s| s.pointer) {
                Some(pointer) => format!("{pointer}: {text}"),
                None => text,
            })
        })
        .collect::<Vec<_>>()
        .join("; ");
    let detail = Some(from_errors).filter(|d| !d.is_empty()).or(doc.status)?;
    Some(detail.chars().take(300).collect())
}

#[cfg(test)]
mod tests;
