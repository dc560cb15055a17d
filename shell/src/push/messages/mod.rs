//! The JSON:API documents of Keylime's push model (REST API v3.0): the
//! requests keylet sends and the answers it reads from the verifier. Pure
//! functions, so the answer parsers are fuzzed (`fuzz/shell_targets.rs`).
//!
//! Every reader checks what it relies on and names the field that was
//! missing or wrong; nothing here panics on any input.

mod attestation;
mod session;

pub use attestation::{
    AgentStatus, Capabilities, Collected, Requested, capabilities, evidence, parse_agent_status,
    parse_next_attestation, parse_requested,
};
pub use session::{
    SessionChallenge, SessionOutcome, parse_session_challenge, parse_session_outcome,
    session_proof, session_request,
};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

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

#[cfg(test)]
mod tests;
