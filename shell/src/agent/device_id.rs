//! The TCG device identity at registration: the IAK and IDevID (see
//! [`super::device_key`]), their certificates (checked against the TPM keys
//! before anything is sent), and the AK certified by the IAK (TPM2_Certify).

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keylet_core::agent::CertifyRequest;
use keylet_core::tpm::Handle;
use keylet_core::tpm::command::Auth;
use keylet_core::tpm::name;
use sha2::{Digest as _, Sha256};
use x509_cert::der::{Decode as _, Encode as _};
use zeroize::Zeroizing;

use super::StartError;
use super::device_key::{IAK, IDEVID, obtain};
use super::tpm_box::TpmBox;
use crate::config::DeviceIdSettings;
use crate::keys::read_certs;
use crate::registrar::DeviceIdFields;

/// The IAK and IDevID as registered, and how to use the IAK.
#[derive(Debug)]
pub(crate) struct DeviceIdentity {
    iak: Handle,
    iak_transient: bool,
    iak_password: Zeroizing<Vec<u8>>,
    /// base64 TPM2B_PUBLIC of the IAK.
    pub(crate) iak_tpm: String,
    /// base64 DER of the IAK certificate.
    pub(crate) iak_cert: String,
    /// base64 TPM2B_PUBLIC of the IDevID.
    pub(crate) idevid_tpm: String,
    /// base64 DER of the IDevID certificate.
    pub(crate) idevid_cert: String,
    /// base64 TPMS_ATTEST and TPMT_SIGNATURE of the AK's certification.
    iak_attest: String,
    iak_sign: String,
}

/// Reads (or re-creates) the IAK and IDevID and checks each against its
/// certificate, before anything is sent. A re-created IDevID is flushed at
/// once; a re-created IAK stays loaded (owned by `tpm`) until it has
/// certified the AK ([`DeviceIdentity::certify_ak`]).
///
/// # Errors
///
/// [`StartError::Tpm`] if a handle holds no key or a key cannot be made,
/// [`StartError::DeviceId`] if a certificate is unusable or for another key.
pub(crate) fn load(tpm: &mut TpmBox, s: &DeviceIdSettings) -> Result<DeviceIdentity, StartError> {
    let idevid_cert = certificate(&s.idevid.cert, IDEVID.cert_option)?;
    let idevid = obtain(tpm, &s.idevid, &IDEVID, s.template, &idevid_cert.spki)?;
    if idevid.transient {
        tpm.release(idevid.handle);
        log::info!("the re-created IDevID is checked against idevid_cert and flushed");
    }
    let iak_cert = certificate(&s.iak.cert, IAK.cert_option)?;
    let iak = obtain(tpm, &s.iak, &IAK, s.template, &iak_cert.spki)?;
    Ok(DeviceIdentity {
        iak: iak.handle,
        iak_transient: iak.transient,
        iak_password: if iak.transient {
            Zeroizing::new(Vec::new())
        } else {
            s.iak.password.clone()
        },
        iak_tpm: STANDARD.encode(iak.public),
        iak_cert: STANDARD.encode(iak_cert.der),
        idevid_tpm: STANDARD.encode(idevid.public),
        idevid_cert: STANDARD.encode(idevid_cert.der),
        iak_attest: String::new(),
        iak_sign: String::new(),
    })
}

/// A certificate file's first certificate.
pub(crate) struct Cert {
    /// Its DER.
    pub(crate) der: Vec<u8>,
    /// Its SubjectPublicKeyInfo (DER).
    pub(crate) spki: Vec<u8>,
}

/// The first certificate in `path` (PEM or DER) and its SubjectPublicKeyInfo.
pub(crate) fn certificate(path: &Path, option: &'static str) -> Result<Cert, StartError> {
    let err = |detail: String| StartError::DeviceId(format!("option {option}: {detail}"));
    let certs = read_certs(path).map_err(err)?;
    let der = certs
        .into_iter()
        .next()
        .ok_or_else(|| err(format!("{} holds no certificate", path.display())))?;
    let cert = x509_cert::Certificate::from_der(der.as_ref()).map_err(|e| {
        err(format!(
            "{} is not an X.509 certificate: {e}",
            path.display()
        ))
    })?;
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|e| err(format!("{}: its public key: {e}", path.display())))?;
    Ok(Cert {
        der: der.as_ref().to_vec(),
        spki,
    })
}

impl DeviceIdentity {
    /// TPM2_Certify of the AK by the IAK, with the qualifying data the
    /// registrar expects of API `api`: SHA-256 of the agent id from 2.6 on,
    /// the id itself before; then the IAK is flushed if keylet re-created it
    /// (a persistent one stays). Returns the registration fields of this
    /// identity and the AK's certification.
    ///
    /// # Errors
    ///
    /// [`StartError::Tpm`] if the TPM refuses (a wrong `iak_password`, for
    /// example), or the answer is not the attestation asked for.
    pub(crate) fn certify_ak(
        &mut self,
        tpm: &mut TpmBox,
        ak: Handle,
        ak_public: &[u8],
        agent_id: &str,
        api: (u8, u8),
    ) -> Result<DeviceIdFields<'_>, StartError> {
        let certified = self.certify(tpm, ak, ak_public, agent_id, api);
        if self.iak_transient {
            tpm.release(self.iak);
            log::info!("the re-created IAK has certified the AK and is flushed");
        }
        (self.iak_attest, self.iak_sign) = certified?;
        Ok(DeviceIdFields {
            iak_tpm: &self.iak_tpm,
            iak_cert: &self.iak_cert,
            idevid_tpm: &self.idevid_tpm,
            idevid_cert: &self.idevid_cert,
            iak_attest: &self.iak_attest,
            iak_sign: &self.iak_sign,
        })
    }

    /// The certification of [`certify_ak`](Self::certify_ak), base64.
    fn certify(
        &self,
        tpm: &mut TpmBox,
        ak: Handle,
        ak_public: &[u8],
        agent_id: &str,
        api: (u8, u8),
    ) -> Result<(String, String), StartError> {
        let step = "certify the AK with the IAK (iak_handle, iak_password)";
        let digest = Sha256::digest(agent_id.as_bytes());
        let qualifying: &[u8] = if api >= (2, 6) {
            digest.as_slice()
        } else {
            agent_id.as_bytes()
        };
        let ak_name = name::of_tpm2b_public(ak_public)
            .map_err(|e| StartError::Credential(format!("the AK public area has no Name: {e}")))?;
        let req = CertifyRequest {
            object: ak,
            object_auth: Auth::EMPTY,
            sign: self.iak,
            sign_auth: Auth::Password(&self.iak_password),
            qualifying,
            object_name: ak_name.as_bytes(),
        };
        let mut out = vec![0u8; 2048];
        let lens = tpm
            .tpm()
            .certify(&req, &mut out)
            .map_err(StartError::tpm(step))?;
        let attest = out.get(..lens.attest).unwrap_or(&[]);
        let end = lens.attest.saturating_add(lens.signature);
        let signature = out.get(lens.attest..end).unwrap_or(&[]);
        Ok((STANDARD.encode(attest), STANDARD.encode(signature)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::PathBuf;

    use super::super::device_key::{Role, match_key};
    use super::*;

    /// Recorded by tests/e2e/iak.sh: the IAK and IDevID swtpm made
    /// (TPM2B_PUBLIC from tpm2_readpublic) and their certificates (PEM, DER).
    fn data(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/iak")
            .join(name)
    }

    fn check(public: &str, role: &Role, cert: &str) -> Result<(), StartError> {
        let public = std::fs::read(data(public)).unwrap();
        let cert_path = data(cert);
        let cert = certificate(&cert_path, role.cert_option)?;
        match_key(&public, 0x8102_0000, role, &cert.spki, &cert_path)
    }

    #[test]
    fn each_certificate_matches_its_own_key_pem_or_der() {
        check("iak.tpm2b", &IAK, "iak-good.pem").unwrap();
        check("idevid.tpm2b", &IDEVID, "idevid-good.der").unwrap();
    }

    #[test]
    fn a_p384_certificate_matches_its_key_and_not_a_p521_one() {
        // the H-3 IAK and H-4 IDevID swtpm made (keylet-core's test data); the
        // certificate carries the IAK's public key (openssl -force_pubkey)
        let devid = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../core/tests/data/devid");
        let cert_path = data("iak-p384.pem");
        let cert = certificate(&cert_path, IAK.cert_option).unwrap();
        let iak = std::fs::read(devid.join("iak-p384.tpm2b")).unwrap();
        match_key(&iak, 0x8102_0002, &IAK, &cert.spki, &cert_path).unwrap();
        let idevid = std::fs::read(devid.join("idevid-p521.tpm2b")).unwrap();
        let e = match_key(&idevid, 0x8102_0002, &IAK, &cert.spki, &cert_path).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("is not for the key at 0x81020002"), "{e}");
    }

    #[test]
    fn a_certificate_for_another_key_names_the_file_and_the_handle() {
        let e = check("iak.tpm2b", &IAK, "idevid-good.der").unwrap_err();
        assert!(matches!(e, StartError::DeviceId(_)), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("idevid-good.der (iak_cert)") && text.contains("0x81020000 (iak_handle)"),
            "{text}"
        );
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
        let cert = certificate(&cert_path, "iak_cert").unwrap();
        let e = match_key(&public, 1, &IAK, &cert.spki, &cert_path).unwrap_err();
        assert!(e.to_string().contains("no signing scheme"), "{e}");
        let e = certificate(&data("iak.tpm2b"), "iak_cert").err().unwrap();
        assert!(e.to_string().starts_with("option iak_cert: "), "{e}");
    }
}
