//! Reading the TPM clock and making an unsafe clock safe again after an
//! unclean TPM reset (see [`crate::tpm::clock`]).

use super::{AgentError, Tpm, read_err};
use crate::tpm::clock::{self, behind_lease, repair_target};
use crate::tpm::command::{Auth, CommandError};
use crate::tpm::transport::Transport;
use crate::verify::ClockInfo;

/// What [`Tpm::make_clock_safe`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockRepair {
    /// The clock was safe; nothing was changed.
    AlreadySafe(ClockInfo),
    /// The clock was unsafe and was set forward; `after` is safe.
    Advanced {
        /// The clock as the TPM reported it before.
        before: ClockInfo,
        /// The clock after TPM2_ClockSet.
        after: ClockInfo,
    },
}

impl<T: Transport> Tpm<'_, T> {
    /// TPM2_ReadClock: the TPM's clock, reset and restart counts and safe flag.
    ///
    /// # Errors
    ///
    /// [`AgentError`] if the command fails or the response is malformed.
    pub async fn read_clock(&mut self) -> Result<ClockInfo, AgentError<T::Error>> {
        let r = self.execute(clock::read_clock).await?;
        clock::time_info(r.parameters).map_err(read_err(r.cc))
    }

    /// Makes the TPM clock safe if it is not: sets it forward, with the
    /// owner hierarchy's authorization `owner`, to the start of the next NV
    /// update interval or to `floor` (the caller's clock lease, see
    /// [`crate::tpm::clock`]), whichever is later; the TPM marks it safe.
    /// With a lease above every clock reported before the reset, every value
    /// reported afterwards is above them too. A clock marked safe is set
    /// forward to the lease too when it is below it (a TPM may restart an
    /// old clock value after a power loss and still call it safe). Does
    /// nothing to a safe clock at or above the lease.
    ///
    /// # Errors
    ///
    /// [`AgentError::Response`] if the TPM refuses TPM2_ClockSet (for
    /// example, the owner password is wrong),
    /// [`AgentError::ClockStillUnsafe`] if the clock is not safe afterwards.
    pub async fn make_clock_safe(
        &mut self,
        owner: Auth<'_>,
        floor: u64,
    ) -> Result<ClockRepair, AgentError<T::Error>> {
        let before = self.read_clock().await?;
        if before.safe && !behind_lease(before.clock, floor) {
            return Ok(ClockRepair::AlreadySafe(before));
        }
        let target = repair_target(before.clock, floor).ok_or(CommandError::Invalid {
            cc: tpm2_protocol::data::TpmCc::ClockSet,
            what: "the TPM clock is too close to its end to be set forward",
        })?;
        self.execute(|b| clock::clock_set(b, target, owner)).await?;
        let after = self.read_clock().await?;
        if !after.safe {
            return Err(AgentError::ClockStillUnsafe { clock: after.clock });
        }
        Ok(ClockRepair::Advanced { before, after })
    }
}
