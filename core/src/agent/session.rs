//! Sessions, flushing and TPM hygiene.

use super::{AgentError, Tpm, copy_out, read_err};
use crate::pcr::HashAlg;
use crate::tpm::Handle;
use crate::tpm::capability::{
    self, CAP_HANDLES, HANDLES_LOADED_SESSION, HANDLES_POLICY_SESSION, HANDLES_TRANSIENT,
};
use crate::tpm::command::{self, Auth};
use crate::tpm::command_keys;
use crate::tpm::reader;
use crate::tpm::template::{EkAuth, RH_ENDORSEMENT};
use crate::tpm::transport::Transport;

/// How many handles one GetCapability(HANDLES) round asks for.
const HANDLES_PER_ROUND: usize = 32;
/// How many query-and-flush rounds per handle range.
const MAX_FLUSH_ROUNDS: u32 = 8;

impl<T: Transport> Tpm<'_, T> {
    /// Fills `out` with random bytes from the TPM (64 bytes per command).
    ///
    /// # Errors
    ///
    /// [`AgentError`] if a GetRandom fails or returns no bytes.
    pub async fn get_random(&mut self, out: &mut [u8]) -> Result<(), AgentError<T::Error>> {
        let mut filled = 0usize;
        while let Some(rest) = out.get_mut(filled..).filter(|r| !r.is_empty()) {
            let want = u16::try_from(rest.len().min(64)).unwrap_or(64);
            let r = self.execute(|b| command::get_random(b, want)).await?;
            let bytes = reader::get_random(r.parameters).map_err(read_err(r.cc))?;
            let n = bytes.len().min(rest.len());
            if n == 0 {
                return Err(AgentError::Read {
                    cc: r.cc,
                    error: reader::ReadError::invalid("GetRandom returned no bytes", 0),
                });
            }
            copy_out(bytes.get(..n).unwrap_or(&[]), rest, "random bytes")?;
            filled = filled.saturating_add(n);
        }
        Ok(())
    }

    /// Flushes a transient object or session.
    ///
    /// # Errors
    ///
    /// [`AgentError`] if FlushContext fails (for example, the handle is gone).
    pub async fn flush(&mut self, handle: Handle) -> Result<(), AgentError<T::Error>> {
        self.execute(|b| command::flush_context(b, handle)).await?;
        Ok(())
    }

    /// Flushes every transient object and session on the TPM: what a crashed
    /// process leaves behind on a TPM without a resource manager.
    /// Returns how many handles were flushed.
    ///
    /// # Errors
    ///
    /// [`AgentError`] if GetCapability or a FlushContext fails.
    pub async fn flush_leftovers(&mut self) -> Result<u32, AgentError<T::Error>> {
        let mut flushed: u32 = 0;
        for first in [
            HANDLES_TRANSIENT,
            HANDLES_LOADED_SESSION,
            HANDLES_POLICY_SESSION,
        ] {
            for _ in 0..MAX_FLUSH_ROUNDS {
                let mut found = [0u32; HANDLES_PER_ROUND];
                let mut count = 0usize;
                {
                    let r = self
                        .execute(|b| {
                            command::get_capability(b, CAP_HANDLES, first, HANDLES_PER_ROUND as u32)
                        })
                        .await?;
                    let cap = capability::read(r.parameters).map_err(read_err(r.cc))?;
                    for h in cap.handles().filter(|h| belongs(first, *h)) {
                        if let Some(slot) = found.get_mut(count) {
                            *slot = h;
                            count = count.saturating_add(1);
                        }
                    }
                }
                if count == 0 {
                    break;
                }
                for h in found.iter().take(count) {
                    self.flush(*h).await?;
                    flushed = flushed.saturating_add(1);
                }
            }
        }
        Ok(flushed)
    }

    /// Starts a policy session and satisfies the EK's Policy A in it
    /// (PolicySecret(TPM_RH_ENDORSEMENT) with the endorsement password, see
    /// [`Tpm::with_endorsement_password`]). The
    /// session is flushed again if PolicySecret fails.
    ///
    /// # Errors
    ///
    /// [`AgentError`] if StartAuthSession or PolicySecret fails.
    pub async fn start_ek_policy_session(&mut self) -> Result<Handle, AgentError<T::Error>> {
        let endorsement = Auth::Password(self.endorsement.0);
        let r = self
            .execute(|b| command_keys::start_policy_session(b, HashAlg::Sha256))
            .await?;
        let session = r.handle().ok_or(AgentError::Read {
            cc: r.cc,
            error: reader::ReadError::invalid("StartAuthSession returned no session handle", 0),
        })?;
        let satisfied = self
            .execute(|b| command_keys::policy_secret(b, RH_ENDORSEMENT, endorsement, session))
            .await
            .map(|_| ());
        if let Err(e) = satisfied {
            let _ = self.flush(session).await;
            return Err(e);
        }
        Ok(session)
    }

    /// The session the EK's USER role needs: a Policy A session, or none
    /// for an EK that takes its (empty) password.
    ///
    /// # Errors
    ///
    /// As [`start_ek_policy_session`](Self::start_ek_policy_session).
    pub(super) async fn start_ek_session(
        &mut self,
        auth: EkAuth,
    ) -> Result<Option<Handle>, AgentError<T::Error>> {
        match auth {
            EkAuth::PolicyA => self.start_ek_policy_session().await.map(Some),
            EkAuth::Password => Ok(None),
        }
    }

    /// Flushes the session [`start_ek_session`](Self::start_ek_session) started.
    pub(super) async fn flush_ek_session(
        &mut self,
        session: Option<Handle>,
    ) -> Result<(), AgentError<T::Error>> {
        match session {
            Some(s) => self.flush(s).await,
            None => Ok(()),
        }
    }
}

/// Whether GetCapability(HANDLES, `first`) handle `h` is one to flush.
const fn belongs(first: u32, h: u32) -> bool {
    let kind = h >> 24;
    match first >> 24 {
        0x80 => kind == 0x80,
        // Loaded and saved sessions come back with their own type (HMAC 0x02
        // or policy 0x03) whichever range was asked for.
        _ => kind == 0x02 || kind == 0x03,
    }
}
