//! EK and AK: create or read the EK, create and load the AK under it, and
//! activate a credential.

use super::ek::{EkOrigin, Found};
use super::{AgentError, Tpm, copy_out, read_err};
use crate::pcr::HashAlg;
use crate::tpm::Handle;
use crate::tpm::command::Auth;
use crate::tpm::command_keys;
use crate::tpm::reader::{self, ReadError};
use crate::tpm::template::{self, EkAuth, KeyAlg, RH_ENDORSEMENT};
use crate::tpm::transport::Transport;
use tpm2_protocol::data::TpmtPublic;

/// An endorsement key ready for use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ek {
    /// Its handle.
    pub handle: Handle,
    /// Whether keylet created it (and must flush it) or it is persistent.
    pub transient: bool,
    /// The length of the TPM2B_PUBLIC written to the caller's buffer.
    pub public_len: usize,
    /// Where it comes from.
    pub origin: EkOrigin,
    /// How it authorizes its use.
    pub auth: EkAuth,
}

impl Ek {
    /// The handle and authorization the AK commands need.
    #[must_use]
    pub const fn key(&self) -> EkHandle {
        EkHandle {
            handle: self.handle,
            auth: self.auth,
        }
    }
}

/// A loaded EK and how it authorizes its use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EkHandle {
    /// Its handle.
    pub handle: Handle,
    /// Policy A (low-range templates) or the empty password (userWithAuth).
    pub auth: EkAuth,
}

/// An AK made by TPM2_Create: lengths of the blobs written to the caller's buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreatedAk {
    /// Length of the TPM2B_PUBLIC (with its size field).
    pub public_len: usize,
    /// Length of the TPM2B_PRIVATE (with its size field).
    pub private_len: usize,
}

/// The EK's authorization: its policy session, or the empty password.
const fn ek_auth(session: Option<Handle>) -> Auth<'static> {
    match session {
        Some(s) => Auth::Policy(s),
        None => Auth::EMPTY,
    }
}

fn no_handle<E>(cc: u32) -> AgentError<E> {
    AgentError::Read {
        cc,
        error: ReadError::invalid("response carries no object handle", 0),
    }
}

impl<T: Transport> Tpm<'_, T> {
    /// Makes the EK available and copies its TPM2B_PUBLIC to `public_out`:
    /// with `persistent`, reads that handle's public area as it is
    /// (TPM2_ReadPublic); otherwise uses the EK persisted at the TCG handle
    /// of `alg` when the TPM proves it is the TCG L-1/L-2 template's (see
    /// `agent/ek.rs`), and creates that EK as a transient object
    /// (TPM2_CreatePrimary) when it does not. [`Ek::origin`] says which.
    ///
    /// # Errors
    ///
    /// [`AgentError`] if the TPM refuses or `public_out` is too small (the
    /// transient EK is flushed again in that case).
    pub async fn create_ek(
        &mut self,
        alg: KeyAlg,
        persistent: Option<Handle>,
        public_out: &mut [u8],
    ) -> Result<Ek, AgentError<T::Error>> {
        if let Some(handle) = persistent {
            let public_len = self.read_public(handle, public_out).await?;
            return Ok(Ek {
                handle,
                transient: false,
                public_len,
                origin: EkOrigin::Configured,
                auth: EkAuth::of_public(public_out.get(..public_len).unwrap_or(&[])),
            });
        }
        let tcg = alg.ek_persistent_handle();
        let at_tcg_handle = match self.persisted_ek(alg, tcg, public_out).await? {
            Found::Ek(public_len) => {
                return Ok(Ek {
                    handle: tcg,
                    transient: false,
                    public_len,
                    origin: EkOrigin::Persisted,
                    auth: EkAuth::of_public(public_out.get(..public_len).unwrap_or(&[])),
                });
            }
            Found::NotUsable(at) => at,
        };
        let t = template::ek_template(alg)?;
        let (handle, public_len) = self.create_endorsement_primary(&t, public_out).await?;
        Ok(Ek {
            handle,
            transient: true,
            public_len,
            origin: EkOrigin::Created(at_tcg_handle),
            auth: EkAuth::of_attributes(t.object_attributes.bits()),
        })
    }

    /// Creates a primary key of the endorsement hierarchy (authorized with
    /// the endorsement password, empty unless set) from `template` as a transient object, copies its
    /// TPM2B_PUBLIC to `public_out`, and returns its handle and the length.
    /// The caller flushes the object; on an error nothing is left loaded.
    ///
    /// # Errors
    ///
    /// [`AgentError`] if the TPM refuses or `public_out` is too small.
    pub async fn create_endorsement_primary(
        &mut self,
        template: &TpmtPublic,
        public_out: &mut [u8],
    ) -> Result<(Handle, usize), AgentError<T::Error>> {
        let endorsement = Auth::Password(self.endorsement.0);
        let r = self
            .execute(|b| command_keys::create_primary(b, RH_ENDORSEMENT, endorsement, template))
            .await?;
        let cc = r.cc;
        let handle = r.handle().ok_or(no_handle(cc))?;
        let copied = reader::create_primary(r.parameters)
            .map_err(read_err(cc))
            .and_then(|parts| copy_out(parts.public, public_out, "public area"));
        match copied {
            Ok(public_len) => Ok((handle, public_len)),
            Err(e) => {
                let _ = self.flush(handle).await;
                Err(e)
            }
        }
    }

    /// Reads the TPM2B_PUBLIC of a loaded or persistent object
    /// (TPM2_ReadPublic) into `public_out` and returns its length.
    ///
    /// # Errors
    ///
    /// [`AgentError`] if there is no object at `handle`, the response is
    /// malformed or `public_out` is too small.
    pub async fn read_public(
        &mut self,
        handle: Handle,
        public_out: &mut [u8],
    ) -> Result<usize, AgentError<T::Error>> {
        let r = self
            .execute(|b| command_keys::read_public(b, handle))
            .await?;
        let parts = reader::read_public(r.parameters).map_err(read_err(r.cc))?;
        copy_out(parts.public, public_out, "public area")
    }

    /// Creates an AK under the EK (TPM2_Create, the EK authorized as
    /// [`EkHandle::auth`] says) and copies its TPM2B_PUBLIC and TPM2B_PRIVATE
    /// to the caller's buffers. A policy session is flushed on every path.
    ///
    /// # Errors
    ///
    /// [`AgentError`] if a command fails or a buffer is too small.
    pub async fn create_ak(
        &mut self,
        ek: EkHandle,
        alg: KeyAlg,
        hash: HashAlg,
        public_out: &mut [u8],
        private_out: &mut [u8],
    ) -> Result<CreatedAk, AgentError<T::Error>> {
        let t = template::ak_template(alg, hash)?;
        let session = self.start_ek_session(ek.auth).await?;
        let created: Result<CreatedAk, AgentError<T::Error>> = async {
            let r = self
                .execute(|b| command_keys::create(b, ek.handle, ek_auth(session), &t))
                .await?;
            let parts = reader::create(r.parameters).map_err(read_err(r.cc))?;
            Ok(CreatedAk {
                public_len: copy_out(parts.public, public_out, "AK public area")?,
                private_len: copy_out(parts.private, private_out, "AK private area")?,
            })
        }
        .await;
        let flushed = self.flush_ek_session(session).await;
        let created = created?;
        flushed?;
        Ok(created)
    }

    /// Loads an AK (its TPM2B_PUBLIC and TPM2B_PRIVATE from
    /// [`create_ak`](Self::create_ak)) under the EK and returns its handle.
    /// A policy session is flushed on every path.
    ///
    /// # Errors
    ///
    /// [`AgentError`] if the blobs are malformed or the TPM refuses them
    /// (TPM_RC_INTEGRITY/KEY: they belong to another TPM or EK).
    pub async fn load_ak(
        &mut self,
        ek: EkHandle,
        public: &[u8],
        private: &[u8],
    ) -> Result<Handle, AgentError<T::Error>> {
        let session = self.start_ek_session(ek.auth).await?;
        let loaded = self
            .execute(|b| command_keys::load(b, ek.handle, ek_auth(session), private, public))
            .await
            .and_then(|r| r.handle().ok_or(no_handle(r.cc)));
        let flushed = self.flush_ek_session(session).await;
        match (loaded, flushed) {
            (Ok(h), Ok(())) => Ok(h),
            (Ok(h), Err(e)) => {
                let _ = self.flush(h).await;
                Err(e)
            }
            (Err(e), _) => Err(e),
        }
    }

    /// TPM2_ActivateCredential: recovers the secret a verifier encrypted to
    /// the EK for the AK. `credential_blob` and `secret` are the contents of
    /// the TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET. The secret is copied to
    /// `out`; a policy session is flushed on every path.
    ///
    /// # Errors
    ///
    /// [`AgentError`] if the TPM refuses the credential (it was made for
    /// another AK Name or EK) or `out` is too small.
    pub async fn activate_credential(
        &mut self,
        ak: Handle,
        ek: EkHandle,
        credential_blob: &[u8],
        secret: &[u8],
        out: &mut [u8],
    ) -> Result<usize, AgentError<T::Error>> {
        let session = self.start_ek_session(ek.auth).await?;
        let activated: Result<usize, AgentError<T::Error>> = async {
            let r = self
                .execute(|b| {
                    command_keys::activate_credential(
                        b,
                        (ak, Auth::EMPTY),
                        (ek.handle, ek_auth(session)),
                        credential_blob,
                        secret,
                    )
                })
                .await?;
            let cert_info = reader::activate_credential(r.parameters).map_err(read_err(r.cc))?;
            copy_out(cert_info, out, "credential secret")
        }
        .await;
        let flushed = self.flush_ek_session(session).await;
        let n = activated?;
        flushed?;
        Ok(n)
    }
}
