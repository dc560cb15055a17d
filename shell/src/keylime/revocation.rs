//! A revocation notification as the verifier sends it (keylime-protocol
//! §4.10): `{"msg": "<JSON text>", "signature": "<base64>"}`, the message
//! itself JSON naming the agent that failed. Both are read by
//! [`super::decode`].

use serde::Deserialize;

/// The body of `POST /v2.x/notifications/revocation`: the message, JSON
/// text signed as it is, and its base64 RSA-PSS signature (empty: unsigned).
#[derive(Debug, Deserialize)]
pub struct Notification {
    pub(crate) msg: String,
    #[serde(default)]
    pub(crate) signature: String,
}

/// What keylet reads of a notification's message: the agent that failed.
#[derive(Debug, Deserialize)]
pub(crate) struct RevocationMessage {
    pub(crate) agent_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keylime::decode;

    #[test]
    fn notification_and_message_are_read_with_paths() {
        let body = br#"{"msg":"{\"agent_id\":\"a1\",\"type\":\"revocation\"}"}"#;
        let n: Notification = decode(body).unwrap();
        assert_eq!(n.signature, "");
        let m: RevocationMessage = decode(n.msg.as_bytes()).unwrap();
        assert_eq!(m.agent_id.as_deref(), Some("a1"));
        let e = decode::<Notification>(br#"{"signature":"x"}"#).unwrap_err();
        assert_eq!(e.to_string(), "/msg: missing");
        let e = decode::<RevocationMessage>(br#"{"agent_id":7}"#).unwrap_err();
        assert_eq!(e.path, "/agent_id");
    }
}
