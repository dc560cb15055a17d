//! Reading the TPM's dictionary-attack lockout state (see [`crate::tpm::lockout`]).

use super::{AgentError, Tpm, read_err};
use crate::tpm::capability;
use crate::tpm::lockout::{self, Lockout};
use crate::tpm::transport::Transport;

impl<T: Transport> Tpm<'_, T> {
    /// The failure counter, its maximum and intervals, and whether the TPM
    /// is in lockout.
    ///
    /// # Errors
    ///
    /// [`AgentError`] if the command fails or a lockout property is missing.
    pub async fn read_lockout(&mut self) -> Result<Lockout, AgentError<T::Error>> {
        let r = self.execute(lockout::get_lockout).await?;
        let cap = capability::read(r.parameters).map_err(read_err(r.cc))?;
        Lockout::from_capability(&cap).map_err(read_err(r.cc))
    }
}
