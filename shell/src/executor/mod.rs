//! Where keylet's blocking work runs, so that nothing waits behind work of
//! another kind:
//!
//! * [`tpm`]: the TPM's own worker thread, a queue of TPM jobs with their
//!   deadlines (quotes, push-mode proofs and quotes).
//! * [`operator`]: the operator's scripts (payload delivery with its script,
//!   revocation actions), one at a time on a thread of their own.
//!
//! The async thread only moves bytes; tokio's one blocking thread reads logs.

pub mod operator;
pub mod tpm;

pub use tpm::{TpmJobError, TpmWorker};
