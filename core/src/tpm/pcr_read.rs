//! Reading a whole PCR selection: TPM2_PCR_Read returns at most 8 digests
//! per call, so the selection is read in rounds until complete, and every
//! round must see the same pcrUpdateCounter.
//!
//! [`PcrReadLoop`] is the transport-free state machine: ask it for the next
//! command, hand it each response's parameters, take the values when done.

use core::fmt;

use super::command::{self, CommandError};
use super::reader::{self, ReadError};
use crate::pcr::{HashAlg, PcrMask, PcrValues, PcrValuesError};

/// How often the read starts over because pcrUpdateCounter moved.
pub const MAX_RESTARTS: u32 = 8;

/// A PCR read that could not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PcrReadError {
    /// The response could not be read.
    Read(ReadError),
    /// The TPM returned a bank other than the one asked for.
    WrongBank {
        /// The bank asked for.
        asked: u16,
        /// The bank returned.
        returned: u16,
    },
    /// The TPM returned no PCRs although some were still missing: the bank
    /// is probably not allocated on this TPM.
    NoProgress {
        /// The PCRs still missing.
        missing: PcrMask,
    },
    /// The TPM returned PCRs that were not asked for, or bad digests.
    Values(PcrValuesError),
    /// pcrUpdateCounter kept changing.
    Unstable,
}

impl fmt::Display for PcrReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read(e) => write!(f, "PCR_Read: {e}"),
            Self::WrongBank { asked, returned } => write!(
                f,
                "PCR_Read asked for bank {asked:#06x} but the TPM returned {returned:#06x}"
            ),
            Self::NoProgress { missing } => write!(
                f,
                "the TPM returned none of PCRs {:#x}; is this PCR bank allocated?",
                missing.bits()
            ),
            Self::Values(e) => write!(f, "PCR_Read: {e}"),
            Self::Unstable => f.write_str(
                "PCR values kept changing during the read (pcrUpdateCounter moved every time)",
            ),
        }
    }
}

impl core::error::Error for PcrReadError {}

/// The state of a multi-round PCR read.
#[derive(Debug, Clone)]
pub struct PcrReadLoop {
    values: PcrValues,
    counter: Option<u32>,
    restarts: u32,
}

impl PcrReadLoop {
    /// A read of `mask` in `bank`.
    #[must_use]
    pub fn new(bank: HashAlg, mask: PcrMask) -> Self {
        Self {
            values: PcrValues::new(bank, mask),
            counter: None,
            restarts: 0,
        }
    }

    /// The next PCR_Read command, or `None` once every PCR has a value.
    ///
    /// # Errors
    ///
    /// [`CommandError`] if `buf` is too small.
    pub fn next_command<'b>(&self, buf: &'b mut [u8]) -> Result<Option<&'b [u8]>, CommandError> {
        if self.values.is_complete() {
            return Ok(None);
        }
        command::pcr_read(buf, self.values.bank(), self.values.missing()).map(Some)
    }

    /// Merges the parameters of a PCR_Read response. If pcrUpdateCounter
    /// differs from the previous round, the read starts over.
    ///
    /// # Errors
    ///
    /// [`PcrReadError`] if the response is malformed, for the wrong bank,
    /// makes no progress, or the counter moved more than [`MAX_RESTARTS`] times.
    pub fn accept(&mut self, params: &[u8]) -> Result<(), PcrReadError> {
        let parts = reader::pcr_read(params).map_err(PcrReadError::Read)?;
        let asked = self.values.bank().alg_id();
        if let Some(previous) = self.counter
            && previous != parts.update_counter
        {
            self.restarts = self.restarts.saturating_add(1);
            if self.restarts > MAX_RESTARTS {
                return Err(PcrReadError::Unstable);
            }
            self.values = PcrValues::new(self.values.bank(), self.values.mask());
            self.counter = None;
            return Ok(());
        }
        self.counter = Some(parts.update_counter);
        if parts.mask == PcrMask::EMPTY {
            return Err(PcrReadError::NoProgress {
                missing: self.values.missing(),
            });
        }
        if parts.bank != asked {
            return Err(PcrReadError::WrongBank {
                asked,
                returned: parts.bank,
            });
        }
        for (pcr, digest) in parts.mask.iter().zip(parts.digests.iter()) {
            self.values
                .push(pcr, digest)
                .map_err(PcrReadError::Values)?;
        }
        Ok(())
    }

    /// Whether every PCR has a value.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.values.is_complete()
    }

    /// The values read so far (complete once [`is_complete`](Self::is_complete)).
    #[must_use]
    pub fn values(&self) -> &PcrValues {
        &self.values
    }

    /// Takes the values.
    #[must_use]
    pub fn into_values(self) -> PcrValues {
        self.values
    }
}
