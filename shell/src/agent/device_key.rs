//! One device identity key (`enable_iak_idevid`) in the TPM: read at its
//! persistent handle, or re-created from its TCG template (the template
//! named by `iak_idevid_template`, or detected from its certificate's key),
//! and checked against its certificate. The agent (`device_id.rs`) and
//! `keylet doctor` obtain and check the keys the same way.

use keylet_core::tpm::transport::BlockOn as _;
use std::path::Path;

use keylet_core::agent::Tpm;
use keylet_core::keylime::spki;
use keylet_core::public::{self, alg};
use keylet_core::tpm::Handle;
use keylet_core::tpm::template_devid::{DevIdKey, DevIdTemplate, devid_template};
use keylet_core::tpm::transport::Transport;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::{Decode as _, Encode as _};

use super::StartError;
use crate::config::DeviceKey;
use crate::keys::read_certs;
use crate::tpm::TransportError;

/// Which key, by its option names.
#[derive(Debug)]
pub(crate) struct Role {
    pub(crate) name: &'static str,
    pub(crate) handle_option: &'static str,
    pub(crate) cert_option: &'static str,
    key: DevIdKey,
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

/// A device key in the TPM and its certificate, checked against each other
/// ([`match_key`]).
#[derive(Debug)]
pub(crate) struct Obtained {
    /// Persistent, or a transient object the caller flushes.
    pub(crate) handle: Handle,
    /// The template keylet re-created it from; `None`: read at its handle.
    pub(crate) made_from: Option<DevIdTemplate>,
    /// TPM2B_PUBLIC
    pub(crate) public: Vec<u8>,
    /// Its certificate, DER.
    pub(crate) cert: Vec<u8>,
}

/// Reads the certificate of `key`, then the key of `role` at its handle, or
/// re-created from `template` (or the template of the certificate's key),
/// and checks that the certificate is for it. A re-created key is the
/// caller's to flush, unless it does not match: then it is flushed here.
pub(crate) fn obtain<T: Transport<Error = TransportError>>(
    tpm: &mut Tpm<'_, T>,
    key: &DeviceKey,
    role: &Role,
    template: Option<DevIdTemplate>,
) -> Result<Obtained, StartError> {
    let (cert, cert_spki) = certificate(&key.cert, role.cert_option)?;
    let mut public = vec![0u8; 1024];
    let (handle, made_from, n) = match key.handle {
        Some(handle) => {
            let n = tpm
                .read_public(handle, &mut public)
                .block_on()
                .map_err(StartError::tpm(role.step))?;
            (handle, None, n)
        }
        None => {
            let t = template.or_else(|| detect(&cert_spki)).ok_or_else(|| {
                StartError::DeviceId(format!(
                    "option {}: {}: its key is of no TCG template (H-1 RSA-2048, H-2 P-256, H-3 \
                     P-384, H-4 P-521, H-5 SM2); set iak_idevid_template",
                    role.cert_option,
                    key.cert.display()
                ))
            })?;
            let (name, template) = (role.name, t.name());
            log::info!("re-creating the {name} from TCG template {template}");
            let tmpl = devid_template(role.key, t)
                .map_err(Into::into)
                .map_err(StartError::tpm(role.create_step))?;
            let (handle, n) = tpm
                .create_endorsement_primary(&tmpl, &mut public)
                .block_on()
                .map_err(StartError::tpm(role.create_step))?;
            (handle, Some(t), n)
        }
    };
    public.truncate(n);
    let checked = match_key(&public, handle, role, &cert_spki, &key.cert);
    if checked.is_err()
        && made_from.is_some()
        && let Err(e) = tpm.flush(handle).block_on()
    {
        log::warn!("could not flush TPM object {handle:#010x}: {e}");
    }
    checked?;
    Ok(Obtained {
        handle,
        made_from,
        public,
        cert,
    })
}

/// The first certificate in `path` (PEM or DER) and its SubjectPublicKeyInfo,
/// both DER.
fn certificate(path: &Path, option: &'static str) -> Result<(Vec<u8>, Vec<u8>), StartError> {
    let err = |detail: String| StartError::DeviceId(format!("option {option}: {detail}"));
    let shown = path.display();
    // read_certs refuses a file without a certificate
    let certs = read_certs(path, None).map_err(err)?;
    let der = certs.first().map(|c| c.to_vec()).unwrap_or_default();
    let cert = x509_cert::Certificate::from_der(&der)
        .map_err(|e| err(format!("{shown} is not an X.509 certificate: {e}")))?;
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|e| err(format!("{shown}: its public key: {e}")))?;
    Ok((der, spki))
}

/// Checks that the TPM2B_PUBLIC `public` carries the key `cert_spki` certifies.
fn match_key(
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
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn the_template_is_detected_from_the_key_type_and_curve() {
        // RSA-2048, P-256, P-384 and P-521 SubjectPublicKeyInfo with a placeholder key
        use DevIdTemplate::{H1, H2, H3, H4};
        use public::PublicKey::{EccP256, EccP384, EccP521, Rsa};
        let keys = [
            Rsa {
                modulus: &[0xc5; 256],
                exponent: 0,
            },
            EccP256 {
                x: &[1; 32],
                y: &[2; 32],
            },
            EccP384 {
                x: &[1; 48],
                y: &[2; 48],
            },
            EccP521 {
                x: &[1; 66],
                y: &[2; 66],
            },
        ];
        let mut der = [0u8; spki::MAX_DER_LEN];
        for (key, template) in keys.iter().zip([H1, H2, H3, H4]) {
            let n = spki::der(key, &mut der).unwrap();
            assert_eq!(detect(&der[..n]), Some(template));
        }
        assert_eq!(detect(b"\x30\x00"), None);
    }

    /// Recorded by tests/e2e/iak.sh: the IAK and IDevID swtpm made
    /// (TPM2B_PUBLIC from tpm2_readpublic) and their certificates (PEM, DER).
    fn data(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/iak")
            .join(name)
    }

    const H: Handle = 0x8102_0000;

    fn check(public: PathBuf, role: &Role, cert: &str, handle: Handle) -> Result<(), StartError> {
        let public = std::fs::read(public).unwrap();
        let cert_path = data(cert);
        let (_, spki) = certificate(&cert_path, role.cert_option)?;
        match_key(&public, handle, role, &spki, &cert_path)
    }

    #[test]
    fn each_certificate_matches_its_own_key_pem_or_der_and_no_other() {
        check(data("iak.tpm2b"), &IAK, "iak-good.pem", H).unwrap();
        check(data("idevid.tpm2b"), &IDEVID, "idevid-good.der", H).unwrap();
        // a certificate for another key: the message names the file and the handle
        let e = check(data("iak.tpm2b"), &IAK, "idevid-good.der", H).unwrap_err();
        assert!(matches!(e, StartError::DeviceId(_)), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("idevid-good.der (iak_cert)") && text.contains("0x81020000 (iak_handle)"),
            "{text}"
        );
    }

    #[test]
    fn a_p384_certificate_matches_its_key_and_not_a_p521_one() {
        // the H-3 IAK and H-4 IDevID swtpm made (keylet-core's test data); the
        // certificate carries the IAK's public key (openssl -force_pubkey)
        let devid = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../core/tests/data/devid");
        let p384 = |key: &str| check(devid.join(key), &IAK, "iak-p384.pem", 0x8102_0002);
        p384("iak-p384.tpm2b").unwrap();
        let e = p384("idevid-p521.tpm2b").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("is not for the key at 0x81020002"), "{e}");
    }

    #[test]
    fn an_iak_without_a_scheme_and_a_file_without_a_certificate_are_refused() {
        // the IDevID's area with its scheme set to TPM_ALG_NULL: offset of
        // TPMT_PUBLIC's RSA scheme = size(2) type(2) nameAlg(2) attributes(4)
        // authPolicy(2 + 0) symmetric(2)
        let mut public = std::fs::read(data("idevid.tpm2b")).unwrap();
        assert_eq!(&public[14..16], &[0x00, 0x14], "RSASSA in the recording");
        public[14..18].copy_from_slice(&[0x00, 0x10, 0x00, 0x10]);
        public.drain(16..18); // the NULL scheme has no hash
        let size = u16::try_from(public.len() - 2).unwrap().to_be_bytes();
        public[..2].copy_from_slice(&size);
        let cert_path = data("idevid-good.der");
        let (_, spki) = certificate(&cert_path, "iak_cert").unwrap();
        let e = match_key(&public, 1, &IAK, &spki, &cert_path).unwrap_err();
        assert!(e.to_string().contains("no signing scheme"), "{e}");
        let e = certificate(&data("iak.tpm2b"), "iak_cert").err().unwrap();
        assert!(e.to_string().starts_with("option iak_cert: "), "{e}");
    }
}
