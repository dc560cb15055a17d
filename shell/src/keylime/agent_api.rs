//! The agent's own API (keylime-protocol §4): the answers keylet serves to
//! the verifier and the tenant, and the requests it takes from them.

use serde::{Deserialize, Serialize};

/// `GET /version`: the newest version offered, and all of them oldest first.
#[derive(Debug, Serialize)]
pub(crate) struct VersionResults {
    pub(crate) supported_version: String,
    pub(crate) supported_versions: Vec<String>,
}

/// `GET /v2.x/keys/pubkey`: the payload key, PEM.
#[derive(Debug, Serialize)]
pub(crate) struct PubKeyResults<'a> {
    pub(crate) pubkey: &'a str,
}

/// `GET /v2.2/agent/info` and later.
#[derive(Debug, Serialize)]
pub(crate) struct AgentInfoResults<'a> {
    pub(crate) agent_uuid: &'a str,
    pub(crate) tpm_hash_alg: &'static str,
    pub(crate) tpm_enc_alg: &'static str,
    pub(crate) tpm_sign_alg: &'static str,
    pub(crate) ak_handle: u32,
}

/// `GET /v2.x/quotes/{identity,integrity}`, in wire order. `L` is a log's
/// text: a string in tests, a streamed slot when served.
#[derive(Debug, Serialize)]
pub(crate) struct QuoteResults<'a, L> {
    /// `r…:…:…`.
    pub(crate) quote: &'a str,
    pub(crate) hash_alg: &'static str,
    pub(crate) enc_alg: &'static str,
    pub(crate) sign_alg: &'static str,
    /// The payload key, when the verifier asked for it (`partial=0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) pubkey: Option<&'a str>,
    /// Seconds since the epoch at boot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) boottime: Option<u64>,
    /// IMA lines from `ima_measurement_list_entry` on, when PCR 10 is quoted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ima_measurement_list: Option<L>,
    /// The index of its first line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ima_measurement_list_entry: Option<u64>,
    /// The measured-boot log, base64, when PCRs 0-7 are quoted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) mb_measurement_list: Option<L>,
}

/// `GET /v2.x/keys/verify`: HMAC-SHA384 of the challenge with K, hex.
#[derive(Debug, Serialize)]
pub(crate) struct VerifyResults<'a> {
    pub(crate) hmac: &'a str,
}

/// `POST /v2.x/keys/ukey`: U encrypted to the payload key, HMAC-SHA384 of
/// the agent id with K (hex), and the encrypted payload (both base64).
#[derive(Debug, Deserialize)]
pub(crate) struct UKeyRequest {
    pub(crate) encrypted_key: String,
    pub(crate) auth_tag: String,
    pub(crate) payload: Option<String>,
}

/// `POST /v2.x/keys/vkey`: V encrypted to the payload key, base64.
#[derive(Debug, Deserialize)]
pub(crate) struct VKeyRequest {
    pub(crate) encrypted_key: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keylime::Envelope;

    #[test]
    fn a_quote_has_keylimes_shape_and_omits_what_is_absent() {
        let q = QuoteResults {
            quote: "rAA:BB:CC",
            hash_alg: "sha256",
            enc_alg: "rsa2048",
            sign_alg: "rsassa",
            pubkey: None,
            boottime: Some(5),
            ima_measurement_list: Some("10 a ima-ng\n"),
            ima_measurement_list_entry: Some(3),
            mb_measurement_list: None,
        };
        assert_eq!(
            serde_json::to_string(&Envelope::success(q)).unwrap(),
            r#"{"code":200,"status":"Success","results":{"quote":"rAA:BB:CC","hash_alg":"sha256","enc_alg":"rsa2048","sign_alg":"rsassa","boottime":5,"ima_measurement_list":"10 a ima-ng\n","ima_measurement_list_entry":3}}"#
        );
    }
}
