//! The fuzzed parsers of outside bytes in the keylet shell, one function per
//! target: the agent API's query strings, the `[agent]` TOML configuration,
//! the registrar's JSON answers, the push-model verifier's JSON:API answers and the
//! verifier's revocation notifications. Shared by the cargo-fuzz targets
//! (`fuzz_targets/{http_query,config_toml,registrar_response,verifier_response,revocation_notice}.rs`) and by
//! `tests/tests/fuzz_shell_corpus.rs`, which replays the checked-in corpus on
//! stable. Each returns whether the input parsed, and checks the properties
//! that must hold for any input that does.

use std::path::Path;

use keylet::config::{AgentConfig, RawConfig, read_toml};
use keylet::keylime::push::{self as push_messages, MAX_CHALLENGE, Requested, SessionOutcome};
use keylet::keylime::registrar as messages;
use keylet::server::query::{self, IntegrityQuery, MAX_NONCE_LEN};
use keylet_core::pcr::{HashAlg, PcrMask};

/// A parser under test: returns whether the input parsed.
pub type Target = fn(&[u8]) -> bool;

/// The targets, by corpus directory name.
pub const TARGETS: [(&str, Target); 5] = [
    ("http_query", http_query),
    ("config_toml", config_toml),
    ("registrar_response", registrar_response),
    ("verifier_response", verifier_response),
    ("revocation_notice", revocation_notice),
];

/// The certificate the `revocation_notice` seeds are signed for (fuzz/ and
/// tests/ are both one level below the workspace root).
const REVOCATION_CERT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../fuzz/data/revocation-cert.pem"
);

/// The body of `POST /v2.x/notifications/revocation`, parsed and checked
/// against a fixed certificate: only a correctly signed one passes, and
/// every refusal has a message.
pub fn revocation_notice(data: &[u8]) -> bool {
    let parsed = keylet::keylime::decode::<keylet::revocation::Notification>(data)
        .map_err(|e| keylet::revocation::RevocationError::Malformed(e.to_string()));
    match parsed.and_then(|n| keylet::revocation::notice::verify(n, Path::new(REVOCATION_CERT))) {
        Ok(notice) => {
            assert!(!notice.msg.is_empty());
            true
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            false
        }
    }
}

fn nonce_ok(nonce: &str) -> bool {
    (1..=MAX_NONCE_LEN).contains(&nonce.len()) && nonce.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A request's query string (the part after `?`), as `/quotes/identity` and
/// `/quotes/integrity` parse it; a nonce that passes is 1..64 ASCII
/// alphanumerics and a mask selects only PCRs 0..23.
pub fn http_query(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let _ = query::find(text, "nonce");
    if let Ok(mask) = query::parse_mask(text) {
        assert!(
            mask.bits() < 1 << 24,
            "mask {text:?} selects a PCR above 23"
        );
    }
    if let Ok(q) = IntegrityQuery::identity(text) {
        assert!(nonce_ok(q.nonce.as_str()), "identity nonce {:?}", q.nonce);
    }
    match IntegrityQuery::parse(text) {
        Ok(q) => {
            assert!(nonce_ok(q.nonce.as_str()), "integrity nonce {:?}", q.nonce);
            assert!(
                q.mask.bits() < 1 << 24,
                "integrity mask selects a PCR above 23"
            );
            true
        }
        Err(e) => {
            // Every rejection has a message for the 400's `status`.
            assert!(!e.to_string().is_empty());
            false
        }
    }
}

/// A keylet configuration file's text: TOML, then the `[agent]` options
/// checked into an [`AgentConfig`].
pub fn config_toml(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let mut raw = RawConfig::default();
    if let Err(e) = read_toml(text, Path::new("/fuzz/keylet.toml"), &mut raw) {
        assert!(!e.to_string().is_empty());
        return false;
    }
    let mut warnings = Vec::new();
    match AgentConfig::from_raw(&raw, &mut warnings) {
        Ok(_) => true,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            false
        }
    }
}

/// A registrar answer body: as `GET /version`, as a registration answer
/// (the credential blob) and as a non-200 answer's status message.
pub fn registrar_response(data: &[u8]) -> bool {
    let status = data.first().map_or(200, |b| 200 + u16::from(*b));
    let _ = messages::check_status(status, data, "fuzz", "agent");
    let version =
        messages::parse_version(data).map(|v| messages::pick_version(&[(2, 6), (2, 1)], &v));
    if let Ok(Some(v)) = version {
        assert!(
            v == (2, 6) || v == (2, 1),
            "picked {v:?}, which keylet does not speak"
        );
    }
    let blob = messages::parse_blob(data);
    // Parsed: a version keylet can speak, or a credential blob.
    matches!(version, Ok(Some(_))) || blob.is_ok()
}

/// A push-model verifier answer body, through every reader keylet has for
/// one: the session challenge, the proof's outcome, the evidence requested,
/// the agent status, the next-attestation hint and the error detail.
/// Parsed: one of them accepted it (a hint counts only when present).
pub fn verifier_response(data: &[u8]) -> bool {
    if let Some(detail) = push_messages::error_detail(data) {
        assert!(detail.chars().count() <= 300, "error detail not cut");
    }
    let _ = push_messages::check_content_type(std::str::from_utf8(data).ok());
    let challenge = push_messages::parse_session_challenge(data);
    if let Ok(c) = &challenge {
        assert!(
            (1..=MAX_CHALLENGE).contains(&c.challenge.len()),
            "challenge of {} bytes",
            c.challenge.len()
        );
        assert!(
            !c.id.is_empty() && !c.id.contains('/'),
            "session id {:?}",
            c.id
        );
    }
    let outcome = push_messages::parse_session_outcome(data);
    if let Ok(SessionOutcome::Pass { token, .. }) = &outcome {
        assert!(!token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()));
    }
    let requested = push_messages::parse_requested(data, HashAlg::Sha256, "rsassa");
    if let Ok(items) = &requested {
        for item in items {
            if let Requested::Quote { challenge, pcrs } = item {
                assert!((1..=MAX_CHALLENGE).contains(&challenge.len()));
                assert!(*pcrs != PcrMask::EMPTY && pcrs.bits() < 1 << 24);
            }
        }
    }
    let next = push_messages::parse_next_attestation(data);
    let status = push_messages::parse_agent_status(data);
    if let Ok(s) = &status {
        assert!(s.attestation_status.chars().count() <= 32);
    }
    challenge.is_ok()
        || outcome.is_ok()
        || requested.is_ok()
        || status.is_ok()
        || matches!(next, Ok(Some(_)))
}
