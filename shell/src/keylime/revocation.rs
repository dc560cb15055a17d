//! A revocation notification as the verifier sends it (keylime-protocol
//! §4.10): `{"msg": "<JSON text>", "signature": "<base64>"}`, the message
//! itself JSON naming the agent that failed.

use serde::Deserialize;

use super::{JsonError, decode};

/// The body of `POST /v2.x/notifications/revocation`.
#[derive(Debug, Deserialize)]
pub struct Notification {
    /// The message: JSON text, signed as it is.
    pub(crate) msg: String,
    /// Base64 RSA-PSS signature of `msg`; empty when unsigned.
    #[serde(default)]
    pub(crate) signature: String,
}

/// What keylet reads of a notification's message.
#[derive(Debug, Deserialize)]
pub(crate) struct RevocationMessage {
    /// The agent that failed attestation.
    pub(crate) agent_id: Option<String>,
}

impl Notification {
    /// Parses the request body.
    ///
    /// # Errors
    ///
    /// [`JsonError`] naming what is missing or wrong.
    pub fn parse(body: &[u8]) -> Result<Self, JsonError> {
        decode(body)
    }
}

impl RevocationMessage {
    /// Parses a notification's `msg`.
    ///
    /// # Errors
    ///
    /// [`JsonError`] naming what is wrong.
    pub(crate) fn parse(msg: &str) -> Result<Self, JsonError> {
        decode(msg.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_and_message_are_read_with_paths() {
        let n = Notification::parse(br#"{"msg":"{\"agent_id\":\"a1\",\"type\":\"revocation\"}"}"#)
            .unwrap();
        assert_eq!(n.signature, "");
        let m = RevocationMessage::parse(&n.msg).unwrap();
        assert_eq!(m.agent_id.as_deref(), Some("a1"));
        let e = Notification::parse(br#"{"signature":"x"}"#).unwrap_err();
        assert_eq!(e.to_string(), "/msg: missing");
        let e = RevocationMessage::parse(r#"{"agent_id":7}"#).unwrap_err();
        assert_eq!(e.path, "/agent_id");
    }
}
