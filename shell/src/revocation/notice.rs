//! The signature check of a revocation notification: RSA-PSS over the UTF-8
//! `msg` with SHA-256, MGF1-SHA-256 and the largest salt (keylime-protocol
//! §4.10), by the key whose certificate came with the payload.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rsa::PublicKey;
use rsa::pkcs8::DecodePublicKey as _;
use rsa::signature::Verifier as _;
use x509_cert::Certificate;
use x509_cert::der::{Decode as _, Encode as _};

use super::{Notification, RevocationError};
use crate::keylime::decode;
use crate::keylime::revocation::RevocationMessage;

const MAX_CERT_BYTES: u64 = 64 * 1024;

/// A notification whose signature verified.
#[derive(Debug, Clone)]
pub struct Notice {
    /// The message text, as signed.
    pub msg: String,
    /// The failed agent, as the message names it.
    pub agent_id: String,
}

/// Checks the signature of `notification` with the certificate at `cert`
/// and decodes the message.
///
/// # Errors
///
/// [`RevocationError`] naming what failed.
pub fn verify(notification: Notification, cert: &Path) -> Result<Notice, RevocationError> {
    let signature = notification.signature.trim();
    if signature.is_empty() || signature == "none" {
        return Err(RevocationError::Unsigned);
    }
    let key = load_key(cert)?;
    let sig = STANDARD
        .decode(signature)
        .map_err(|e| RevocationError::Malformed(format!("signature is not base64: {e}")))?;
    // MAX_LENGTH salt: modulus bytes - hash length - 2.
    let salt = rsa::traits::PublicKeyParts::size(&key).saturating_sub(32 + 2);
    let verifier = rsa::pss::VerifyingKey::<sha2::Sha256>::new_with_salt_len(key, salt);
    rsa::pss::Signature::try_from(sig.as_slice())
        .and_then(|s| verifier.verify(notification.msg.as_bytes(), &s))
        .map_err(|_| RevocationError::BadSignature(cert.to_path_buf()))?;
    let message = decode::<RevocationMessage>(notification.msg.as_bytes())
        .map_err(|e| RevocationError::Malformed(format!("msg: {e}")))?;
    Ok(Notice {
        agent_id: message.agent_id.unwrap_or_else(|| "?".to_string()),
        msg: notification.msg,
    })
}

/// The RSA public key of the certificate at `path` (PEM or DER).
fn load_key(path: &Path) -> Result<PublicKey, RevocationError> {
    let bad = |reason: String| RevocationError::BadCertificate(path.to_path_buf(), reason);
    let bytes = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(RevocationError::NoCertificate(path.to_path_buf()));
        }
        Err(e) => return Err(bad(e.to_string())),
        Ok(m) if m.len() > MAX_CERT_BYTES => {
            return Err(bad(format!("larger than {MAX_CERT_BYTES} bytes")));
        }
        Ok(_) => std::fs::read(path).map_err(|e| bad(e.to_string()))?,
    };
    // The first certificate of a PEM file, or the DER bytes as they are.
    let certs = crate::keys::parse_certs(&bytes).unwrap_or_default();
    let der = certs.first().map_or(bytes.as_slice(), |cert| cert.as_ref());
    let cert =
        Certificate::from_der(der).map_err(|e| bad(format!("not an X.509 certificate: {e}")))?;
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|e| bad(e.to_string()))?;
    PublicKey::from_public_key_der(&spki)
        .map_err(|e| bad(format!("its key is not an RSA key: {e}")))
}
