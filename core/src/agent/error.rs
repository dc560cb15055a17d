//! The error of the agent's TPM sequences.

use core::fmt;

use crate::keylime::quote_string::QuoteStringError;
use crate::tpm::command::CommandError;
use crate::tpm::pcr_read::PcrReadError;
use crate::tpm::reader::ReadError;
use crate::tpm::response::{CcName, ResponseError};
use crate::verify::QuoteError;

/// Why a TPM sequence failed. `E` is the transport's error.
#[derive(Debug)]
#[non_exhaustive]
pub enum AgentError<E> {
    /// The transport failed while sending command `cc` or receiving its response.
    Transport {
        /// The command code.
        cc: u32,
        /// The transport's error.
        error: E,
    },
    /// A command could not be built.
    Command(CommandError),
    /// The TPM returned an error code, or a malformed frame.
    Response(ResponseError),
    /// A response's parameters could not be read.
    Read {
        /// The command code.
        cc: u32,
        /// Where and what.
        error: ReadError,
    },
    /// The PCR read loop failed.
    PcrRead(PcrReadError),
    /// A caller buffer is too small.
    BufferTooSmall {
        /// What was being stored.
        what: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// An EK certificate NV index does not hold a DER SEQUENCE.
    NotDer {
        /// The NV index.
        index: u32,
    },
    /// The quote failed its self-check (after the allowed retries, for a
    /// PCR digest mismatch).
    QuoteSelfCheck(QuoteError),
    /// The quote string could not be written.
    QuoteString(QuoteStringError),
    /// A TPM2_Certify attestation failed its self-check (wrong extraData or
    /// certified Name, or not a certify attestation).
    CertifySelfCheck(QuoteError),
    /// TPM2_ClockSet succeeded but the TPM still reports an unsafe clock.
    ClockStillUnsafe {
        /// The clock the TPM reports now, in milliseconds.
        clock: u64,
    },
}

impl<E> From<CommandError> for AgentError<E> {
    fn from(e: CommandError) -> Self {
        Self::Command(e)
    }
}

impl<E> From<ResponseError> for AgentError<E> {
    fn from(e: ResponseError) -> Self {
        Self::Response(e)
    }
}

impl<E> From<PcrReadError> for AgentError<E> {
    fn from(e: PcrReadError) -> Self {
        Self::PcrRead(e)
    }
}

impl<E> AgentError<E> {
    /// The TPM response code, if the TPM answered with an error code.
    #[must_use]
    pub fn rc(&self) -> Option<crate::tpm::rc::ResponseCode> {
        match self {
            Self::Response(e) => e.rc(),
            _ => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for AgentError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport { cc, error } => {
                write!(f, "TPM transport failed during {}: {error}", CcName(*cc))
            }
            Self::Command(e) => write!(f, "{e}"),
            Self::Response(e) => write!(f, "{e}"),
            Self::Read { cc, error } => write!(f, "response to {}: {error}", CcName(*cc)),
            Self::PcrRead(e) => write!(f, "{e}"),
            Self::BufferTooSmall {
                what,
                needed,
                available,
            } => write!(
                f,
                "{what} needs {needed} bytes but the buffer has {available}"
            ),
            Self::NotDer { index } => write!(
                f,
                "NV index {index:#010x} does not hold a DER certificate (no SEQUENCE header)"
            ),
            Self::QuoteSelfCheck(e) => write!(f, "quote failed its self-check: {e}"),
            Self::QuoteString(e) => write!(f, "cannot encode the quote: {e}"),
            Self::CertifySelfCheck(e) => write!(f, "TPM2_Certify failed its self-check: {e}"),
            Self::ClockStillUnsafe { clock } => write!(
                f,
                "the TPM clock ({clock} ms) is still not safe after TPM2_ClockSet; this TPM saves \
                 its clock less often than every 2^22 ms: it marks the clock safe by itself \
                 once it next saves it; shut the TPM down orderly (TPM2_Shutdown) before resets"
            ),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for AgentError<E> {}
