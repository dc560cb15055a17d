//! The mTLS server key (EC P-256) and its self-signed certificate.
//!
//! The certificate is sent to the registrar as `mtls_cert` and pinned by the
//! verifier when the agent is added, so it is made once, with a long validity,
//! and reused. It gets a random positive serial and every extension (the SANs)
//! is in place before it is signed, so its self-signature verifies.

use std::net::IpAddr;
use std::path::Path;

use rcgen::{CertificateParams, DnType, KeyPair, SanType, SerialNumber};
use zeroize::Zeroizing;

use super::mtls_install;
use crate::store::{self, StoreError};

/// How long a generated certificate is valid: the verifier pins it at
/// `tenant add` time and checks its dates, so it must outlive the enrollment.
const VALIDITY_DAYS: i64 = 10 * 365;

/// Loads the server key and certificate, or generates both if both are
/// missing; returns the certificate PEM (as registered).
///
/// Errors: [`StoreError`] if only one of the two exists, a file is unreadable or too
/// open, or generation fails.
pub(crate) fn load_or_create_mtls(
    key_path: &Path,
    cert_path: &Path,
    password: &str,
    agent_id: &str,
    contact_ip: &str,
) -> Result<String, StoreError> {
    if !password.is_empty() {
        return Err(StoreError::PasswordUnsupported("server_key_password"));
    }
    mtls_install::complete_pending(key_path, cert_path)?;
    if let Some((_, cert_pem)) = read_mtls(key_path, cert_path)? {
        return Ok(cert_pem);
    }
    log::info!(
        "generating the mTLS server key (EC P-256) and certificate at {}",
        cert_path.display()
    );
    let (key_pem, cert_pem) = new_mtls_pem(agent_id, contact_ip)?;
    mtls_install::install(key_path, cert_path, &key_pem, &cert_pem)?;
    Ok(cert_pem)
}

/// The server key's and certificate's PEM (the key wiped on drop).
pub(crate) type MtlsPair = (Zeroizing<Vec<u8>>, String);

/// The server key and certificate PEM, `None` if neither exists yet; `keylet
/// doctor` checks them with this too.
///
/// Errors: [`StoreError`] if only one of the two exists, or a file is unreadable,
/// too open or not what it should be.
pub(crate) fn read_mtls(key_path: &Path, cert_path: &Path) -> Result<Option<MtlsPair>, StoreError> {
    let key = store::read_private(key_path)?;
    let cert = store::read(cert_path, false)?;
    match (key, cert) {
        (Some(key), Some(cert)) => {
            let not_pem = |path| StoreError::invalid(path, "not a PEM file");
            let key_text = std::str::from_utf8(&key).map_err(|_| not_pem(key_path))?;
            KeyPair::from_pem(key_text).map_err(|e| {
                StoreError::invalid(key_path, format!("not a usable private key ({e})"))
            })?;
            let cert_pem = String::from_utf8(cert.to_vec()).map_err(|_| not_pem(cert_path))?;
            if !cert_pem.contains(mtls_install::CERT_BEGIN) {
                return Err(StoreError::invalid(cert_path, "holds no PEM certificate"));
            }
            Ok(Some((key, cert_pem)))
        }
        (None, None) => Ok(None),
        (key, _) => {
            let ((missing, what), (present, other)) = if key.is_some() {
                ((cert_path, "certificate"), (key_path, "key"))
            } else {
                ((key_path, "key"), (cert_path, "certificate"))
            };
            Err(StoreError::invalid(
                missing,
                format!(
                    "is missing while the {other} {} exists; restore the {what}, or move the \
                     {other} away to generate both anew (then run keylime_tenant -c update for \
                     this agent)",
                    present.display()
                ),
            ))
        }
    }
}

/// A new mTLS server key (EC P-256, PEM) and self-signed certificate (PEM)
/// for `agent_id`, in memory; `keylet rotate-cert` writes them once the
/// registrar has accepted the certificate.
///
/// Errors: [`StoreError::Generate`] if key or certificate generation fails.
pub(crate) fn new_mtls_pem(
    agent_id: &str,
    contact_ip: &str,
) -> Result<(Zeroizing<String>, String), StoreError> {
    let gen_err = StoreError::generate::<rcgen::Error>;
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(gen_err("mTLS server key"))?;
    // rcgen makes the addresses IP SANs and the names DNS SANs.
    let sans = ["localhost", "localhost.domain", "127.0.0.1", "::1"].map(String::from);
    let mut params = CertificateParams::new(sans).map_err(gen_err("mTLS certificate"))?;
    params.distinguished_name.push(DnType::CommonName, agent_id);
    let contact = match contact_ip.parse::<IpAddr>() {
        Ok(ip) => Some(SanType::IpAddress(ip)),
        // A contact_ip that is no valid DNS name is left out.
        Err(_) => contact_ip.to_string().try_into().ok().map(SanType::DnsName),
    };
    if let Some(san) = contact.filter(|san| !params.subject_alt_names.contains(san)) {
        params.subject_alt_names.push(san);
    }
    let mut serial = [0u8; 16];
    getrandom::fill(&mut serial).map_err(StoreError::generate("certificate serial"))?;
    // Positive and non-zero: clear the top bit, set the next one.
    serial[0] = (serial[0] & 0x7f) | 0x40;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(VALIDITY_DAYS);
    let cert = params
        .self_signed(&key)
        .map_err(gen_err("mTLS certificate"))?;
    Ok((Zeroizing::new(key.serialize_pem()), cert.pem()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn generated_once_and_verifies_with_openssl() {
        let dir = tempfile::tempdir().unwrap();
        let (k, c) = (dir.path().join("k.pem"), dir.path().join("c.crt"));
        let a = load_or_create_mtls(&k, &c, "", "agent-1", "192.0.2.7").unwrap();
        let written = std::fs::read(&c).unwrap();
        let b = load_or_create_mtls(&k, &c, "", "agent-1", "192.0.2.7").unwrap();
        // The second start loads what the first generated, and rewrites nothing.
        assert_eq!(a, b);
        assert_eq!(std::fs::read(&c).unwrap(), written);
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl").args(args).arg(&c).output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(out.status.success(), "openssl {args:?}: {text}");
            text
        };
        // The self-signature verifies (all extensions were added before signing).
        openssl(&["verify", "-partial_chain", "-CAfile", c.to_str().unwrap()]);
        let text = openssl(&["x509", "-noout", "-text", "-in"]);
        assert!(
            text.contains("CN = agent-1") || text.contains("CN=agent-1"),
            "{text}"
        );
        assert!(text.contains("IP Address:192.0.2.7"), "{text}");
        assert!(text.contains("DNS:localhost"), "{text}");
    }

    #[test]
    fn one_file_without_the_other_is_an_error_not_a_silent_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let (k, c) = (dir.path().join("k.pem"), dir.path().join("c.crt"));
        load_or_create_mtls(&k, &c, "", "a", "127.0.0.1").unwrap();
        std::fs::remove_file(&c).unwrap();
        let err = load_or_create_mtls(&k, &c, "", "a", "127.0.0.1").unwrap_err();
        assert!(err.to_string().contains("is missing"), "{err}");
        assert!(k.exists());
    }
}
