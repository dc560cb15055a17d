//! TPM2_Certify: a signing key vouches that an object is loaded in this TPM.
//!
//! The push model's proof of possession is the AK certified by itself with
//! the verifier's challenge as qualifyingData; an IAK certifying an AK is the
//! same command with other handles.

use super::{AgentError, Tpm, copy_out, read_err};
use crate::tpm::Handle;
use crate::tpm::command::{self, Auth};
use crate::tpm::reader;
use crate::tpm::transport::Transport;
use crate::verify;

/// One TPM2_Certify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertifyRequest<'a> {
    /// The loaded object to certify.
    pub object: Handle,
    /// Its ADMIN-role authorization.
    pub object_auth: Auth<'a>,
    /// The loaded signing key.
    pub sign: Handle,
    /// Its USER-role authorization.
    pub sign_auth: Auth<'a>,
    /// qualifyingData (at most 64 bytes): the verifier's decoded challenge.
    pub qualifying: &'a [u8],
    /// The object's Name (without TPM2B size): the attestation must certify it.
    pub object_name: &'a [u8],
}

/// Where [`Tpm::certify`] put the two parts in the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertifyLens {
    /// The TPMS_ATTEST is `out[..attest]`.
    pub attest: usize,
    /// The TPMT_SIGNATURE is `out[attest..attest + signature]`.
    pub signature: usize,
}

impl<T: Transport> Tpm<'_, T> {
    /// Runs TPM2_Certify, checks that the attestation answers
    /// `req.qualifying` and certifies `req.object_name`, and copies the
    /// TPMS_ATTEST followed by the TPMT_SIGNATURE into `out`. Allocates
    /// nothing; creates no TPM object.
    ///
    /// # Errors
    ///
    /// [`AgentError`] if the command fails, the response is malformed,
    /// [`AgentError::CertifySelfCheck`] if the attestation is not the one
    /// asked for, or [`AgentError::BufferTooSmall`] if `out` is too small.
    pub async fn certify(
        &mut self,
        req: &CertifyRequest<'_>,
        out: &mut [u8],
    ) -> Result<CertifyLens, AgentError<T::Error>> {
        let r = self
            .execute(|b| {
                command::certify(
                    b,
                    req.object,
                    req.object_auth,
                    req.sign,
                    req.sign_auth,
                    req.qualifying,
                )
            })
            .await?;
        let parts = reader::certify(r.parameters).map_err(read_err(r.cc))?;
        verify::check_certify(parts.attest, req.qualifying, req.object_name)
            .map_err(AgentError::CertifySelfCheck)?;
        let attest = copy_out(parts.attest, out, "certify attestation")?;
        let rest = out.get_mut(attest..).unwrap_or(&mut []);
        let signature = copy_out(parts.signature, rest, "certify signature")?;
        Ok(CertifyLens { attest, signature })
    }
}
