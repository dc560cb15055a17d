//! The TCG device identity at registration: the IAK and IDevID (see
//! [`super::device_key`]), their certificates (checked against the TPM keys
//! before anything is sent), and the AK certified by the IAK (TPM2_Certify).

use crate::secret::Secret;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keylet_core::agent::CertifyRequest;
use keylet_core::tpm::Handle;
use keylet_core::tpm::command::Auth;
use keylet_core::tpm::name;
use keylet_core::tpm::transport::BlockOn as _;
use sha2::{Digest as _, Sha256};

use super::StartError;
use super::device_key::{IAK, IDEVID, obtain};
use super::tpm_box::TpmBox;
use crate::config::DeviceIdSettings;
use crate::registrar::DeviceIdFields;

/// The IAK and IDevID as registered, and how to use the IAK.
#[derive(Debug)]
pub(crate) struct DeviceIdentity {
    iak: Handle,
    iak_transient: bool,
    iak_password: Secret<Vec<u8>>,
    /// base64 TPM2B_PUBLIC and certificate DER of the IAK and the IDevID.
    iak_tpm: String,
    iak_cert: String,
    idevid_tpm: String,
    idevid_cert: String,
    /// base64 TPMS_ATTEST and TPMT_SIGNATURE of the AK's certification.
    iak_attest: String,
    iak_sign: String,
}

/// Reads (or re-creates) the IAK and IDevID and checks each against its
/// certificate, before anything is sent. A re-created IDevID is flushed at
/// once; a re-created IAK stays loaded (owned by `tpm`) until it has
/// certified the AK ([`DeviceIdentity::certify_ak`]) or the registrar could
/// not be asked ([`DeviceIdentity::release_iak`]).
pub(crate) fn load(tpm: &mut TpmBox, s: &DeviceIdSettings) -> Result<DeviceIdentity, StartError> {
    let idevid = obtain(&mut tpm.tpm(), &s.idevid, &IDEVID, s.template)?;
    if idevid.made_from.is_some() {
        tpm.release(idevid.handle).block_on();
        log::info!("the re-created IDevID is checked against idevid_cert and flushed");
    }
    let iak = obtain(&mut tpm.tpm(), &s.iak, &IAK, s.template)?;
    let iak_transient = iak.made_from.is_some();
    if iak_transient {
        tpm.own(iak.handle);
    }
    Ok(DeviceIdentity {
        iak: iak.handle,
        iak_transient,
        iak_password: if iak_transient {
            Secret::default()
        } else {
            s.iak.password.clone()
        },
        iak_tpm: STANDARD.encode(iak.public),
        iak_cert: STANDARD.encode(iak.cert),
        idevid_tpm: STANDARD.encode(idevid.public),
        idevid_cert: STANDARD.encode(idevid.cert),
        iak_attest: String::new(),
        iak_sign: String::new(),
    })
}

impl DeviceIdentity {
    /// TPM2_Certify of the AK by the IAK, with the qualifying data the
    /// registrar expects of API `api`: SHA-256 of the agent id from 2.6 on,
    /// the id itself before; then the IAK is flushed if keylet re-created it
    /// (a persistent one stays). Returns the registration fields of this
    /// identity and the AK's certification. A wrong `iak_password` is a
    /// [`StartError::Tpm`].
    pub(crate) fn certify_ak(
        &mut self,
        tpm: &mut TpmBox,
        ak: Handle,
        ak_public: &[u8],
        agent_id: &str,
        api: (u8, u8),
    ) -> Result<DeviceIdFields<'_>, StartError> {
        let step = "certify the AK with the IAK (iak_handle, iak_password)";
        let digest = Sha256::digest(agent_id.as_bytes());
        let qualifying: &[u8] = if api >= (2, 6) {
            digest.as_slice()
        } else {
            agent_id.as_bytes()
        };
        let mut out = vec![0u8; 2048];
        let certified = name::of_tpm2b_public(ak_public)
            .map_err(|e| StartError::Credential(format!("the AK public area has no Name: {e}")))
            .and_then(|ak_name| {
                let req = CertifyRequest {
                    object: ak,
                    object_auth: Auth::EMPTY,
                    sign: self.iak,
                    sign_auth: Auth::Password(&self.iak_password),
                    qualifying,
                    object_name: ak_name.as_bytes(),
                };
                tpm.tpm()
                    .certify(&req, &mut out)
                    .block_on()
                    .map_err(StartError::tpm(step))
            });
        if self.release_iak(tpm) {
            log::info!("the re-created IAK has certified the AK and is flushed");
        }
        let lens = certified?;
        let end = lens.attest.saturating_add(lens.signature);
        self.iak_attest = STANDARD.encode(out.get(..lens.attest).unwrap_or(&[]));
        self.iak_sign = STANDARD.encode(out.get(lens.attest..end).unwrap_or(&[]));
        Ok(DeviceIdFields {
            iak_tpm: &self.iak_tpm,
            iak_cert: &self.iak_cert,
            idevid_tpm: &self.idevid_tpm,
            idevid_cert: &self.idevid_cert,
            iak_attest: &self.iak_attest,
            iak_sign: &self.iak_sign,
        })
    }

    /// Flushes the IAK if keylet re-created it (a persistent one stays);
    /// whether it did. A registration that ends before the certification
    /// (the registrar unreachable) flushes it so: a next round re-creates it.
    pub(crate) fn release_iak(&mut self, tpm: &mut TpmBox) -> bool {
        let transient = std::mem::take(&mut self.iak_transient);
        if transient {
            tpm.release(self.iak).block_on();
        }
        transient
    }
}
