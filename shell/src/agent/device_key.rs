//! One device identity key in the TPM: read at its persistent handle, or
//! re-created from its TCG template (the template named by
//! `iak_idevid_template`, or detected from its certificate's key), and
//! checked against its certificate.

use std::path::Path;

use keylet_core::keylime::spki;
use keylet_core::public::{self, alg};
use keylet_core::tpm::Handle;
use keylet_core::tpm::template_devid::{DevIdKey, DevIdTemplate, devid_template};
use x509_cert::der::Decode as _;
use x509_cert::der::asn1::ObjectIdentifier;

use super::StartError;
use super::tpm_box::TpmBox;
use crate::config::DeviceKey;

/// Which key, by its option names.
#[derive(Debug)]
pub(crate) struct Role {
    pub(crate) name: &'static str,
    pub(crate) handle_option: &'static str,
    pub(crate) cert_option: &'static str,
    pub(crate) key: DevIdKey,
    step: &'static str,
    create_step: &'static str,
}

pub(crate) const IAK: Role = Role {
    name: "IAK",
    handle_option: "iak_handle",
    cert_option: "iak_cert",
    key: DevIdKey::Iak,
    step: "read the IAK (iak_handle)",
    create_step: "re-create the IAK from its template (iak_idevid_template)",
};

pub(crate) const IDEVID: Role = Role {
    name: "IDevID",
    handle_option: "idevid_handle",
    cert_option: "idevid_cert",
    key: DevIdKey::IDevId,
    step: "read the IDevID (idevid_handle)",
    create_step: "re-create the IDevID from its template (iak_idevid_template)",
};

/// A key in the TPM, checked against its certificate.
#[derive(Debug)]
pub(super) struct Obtained {
    /// Its handle: persistent, or a transient object the box owns.
    pub(crate) handle: Handle,
    /// Whether keylet created it (and flushes it).
    pub(crate) transient: bool,
    /// Its TPM2B_PUBLIC.
    pub(crate) public: Vec<u8>,
}

/// The key of `role` at its handle, or re-created from `template` (or the
/// template of the certificate's key) and owned by `tpm`; then checked
/// against the certificate's SubjectPublicKeyInfo `cert_spki`.
///
/// # Errors
///
/// [`StartError::Tpm`] if the TPM has no such key or refuses to create it,
/// [`StartError::DeviceId`] if it is not the certificate's key.
pub(super) fn obtain(
    tpm: &mut TpmBox,
    key: &DeviceKey,
    role: &Role,
    template: Option<DevIdTemplate>,
    cert_spki: &[u8],
) -> Result<Obtained, StartError> {
    let mut public = vec![0u8; 1024];
    let (handle, transient, n) = match key.handle {
        Some(handle) => {
            let n = tpm
                .tpm()
                .read_public(handle, &mut public)
                .map_err(StartError::tpm(role.step))?;
            (handle, false, n)
        }
        None => {
            let t = template_for(key, role, template, cert_spki)?;
            log::info!(
                "re-creating the {} from TCG template {}",
                role.name,
                t.name()
            );
            let step = role.create_step;
            let tmpl = devid_template(role.key, t)
                .map_err(Into::into)
                .map_err(StartError::tpm(step))?;
            let (handle, n) = tpm
                .tpm()
                .create_endorsement_primary(&tmpl, &mut public)
                .map_err(StartError::tpm(step))?;
            tpm.own(handle);
            (handle, true, n)
        }
    };
    public.truncate(n);
    match_key(&public, handle, role, cert_spki, &key.cert)?;
    Ok(Obtained {
        handle,
        transient,
        public,
    })
}

/// The template of a key without a handle: `template`, or the one of the
/// certificate's key (`detect`).
///
/// # Errors
///
/// [`StartError::DeviceId`] if the certificate's key is of no TCG template.
pub(crate) fn template_for(
    key: &DeviceKey,
    role: &Role,
    template: Option<DevIdTemplate>,
    cert_spki: &[u8],
) -> Result<DevIdTemplate, StartError> {
    template.or_else(|| detect(cert_spki)).ok_or_else(|| {
        StartError::DeviceId(format!(
            "option {}: {}: its key is of no TCG template (H-1 RSA-2048, H-2 P-256, H-3 P-384, \
             H-4 P-521, H-5 SM2); set iak_idevid_template",
            role.cert_option,
            key.cert.display()
        ))
    })
}

/// Checks that the TPM2B_PUBLIC `public` carries the key `cert_spki` certifies.
pub(crate) fn match_key(
    public: &[u8],
    handle: Handle,
    role: &Role,
    cert_spki: &[u8],
    cert_path: &Path,
) -> Result<(), StartError> {
    let (cert_option, handle_option) = (role.cert_option, role.handle_option);
    let key_error = |detail: String| {
        StartError::DeviceId(format!(
            "option {handle_option}: the key at {handle:#010x} {detail}"
        ))
    };
    let area =
        public::read_tpm2b_public(public).map_err(|e| key_error(format!("cannot be used: {e}")))?;
    if role.key == DevIdKey::Iak && area.scheme.alg == alg::NULL {
        return Err(key_error(
            "has no signing scheme (an IAK from a TCG template has RSASSA-PSS, RSASSA or ECDSA)"
                .into(),
        ));
    }
    let mut tpm_spki = [0u8; spki::MAX_DER_LEN];
    let len = spki::der(&area.key, &mut tpm_spki)
        .map_err(|e| key_error(format!("cannot be encoded: {e}")))?;
    if tpm_spki.get(..len) != Some(cert_spki) {
        let path = cert_path.display();
        return Err(StartError::DeviceId(if handle >> 24 == 0x80 {
            format!(
                "the certificate {path} ({cert_option}) is not for the key keylet re-created from \
                 its TCG template: their public keys differ. Set iak_idevid_template to the \
                 template the key was made from, or {handle_option} to the persistent key the \
                 certificate is for"
            )
        } else {
            format!(
                "the certificate {path} ({cert_option}) is not for the key at {handle:#010x} \
                 ({handle_option}): their public keys differ. Point {cert_option} at the \
                 certificate issued for that key, or {handle_option} at the key it certifies"
            )
        }));
    }
    Ok(())
}

/// The TCG template of the key in a SubjectPublicKeyInfo (DER).
fn detect(cert_spki: &[u8]) -> Option<DevIdTemplate> {
    let info = x509_cert::spki::SubjectPublicKeyInfoOwned::from_der(cert_spki).ok()?;
    let curve = info
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
        .map(|oid| oid.to_string());
    match (info.algorithm.oid.to_string().as_str(), curve.as_deref()) {
        ("1.2.840.113549.1.1.1", _) => Some(DevIdTemplate::H1),
        ("1.2.840.10045.2.1", Some("1.2.840.10045.3.1.7")) => Some(DevIdTemplate::H2),
        ("1.2.840.10045.2.1", Some("1.3.132.0.34")) => Some(DevIdTemplate::H3),
        ("1.2.840.10045.2.1", Some("1.3.132.0.35")) => Some(DevIdTemplate::H4),
        ("1.2.840.10045.2.1", Some("1.2.156.10197.1.301")) => Some(DevIdTemplate::H5),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_detected_from_the_key_type_and_curve() {
        // RSA-2048, P-256, P-384 and P-521 SubjectPublicKeyInfo with a placeholder key
        let mut rsa = [0u8; 294];
        let n = spki::der(
            &public::PublicKey::Rsa {
                modulus: &[0xc5; 256],
                exponent: 0,
            },
            &mut rsa,
        )
        .unwrap();
        assert_eq!(detect(&rsa[..n]), Some(DevIdTemplate::H1));
        let mut ec = [0u8; 91];
        let n = spki::der(
            &public::PublicKey::EccP256 {
                x: &[1; 32],
                y: &[2; 32],
            },
            &mut ec,
        )
        .unwrap();
        assert_eq!(detect(&ec[..n]), Some(DevIdTemplate::H2));
        let mut ec = [0u8; spki::MAX_DER_LEN];
        let p384 = public::PublicKey::EccP384 {
            x: &[1; 48],
            y: &[2; 48],
        };
        let n = spki::der(&p384, &mut ec).unwrap();
        assert_eq!(detect(&ec[..n]), Some(DevIdTemplate::H3));
        let p521 = public::PublicKey::EccP521 {
            x: &[1; 66],
            y: &[2; 66],
        };
        let n = spki::der(&p521, &mut ec).unwrap();
        assert_eq!(detect(&ec[..n]), Some(DevIdTemplate::H4));
        assert_eq!(detect(b"\x30\x00"), None);
    }
}
