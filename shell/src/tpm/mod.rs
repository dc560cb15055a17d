//! TPM transports: the std side of `keylet_core::tpm::transport::Transport`.
//!
//! [`TpmTransport`] reaches a TPM character device (`/dev/tpmrm0`,
//! `/dev/tpm0`) or any already-open descriptor with the same
//! one-write-one-read semantics (an inherited device fd, one end of a
//! socketpair to `swtpm chardev`), swtpm's TCP data port, or the
//! Microsoft/IBM TPM simulator (framed commands, power-on on its platform
//! port).
//!
//! [`TpmDevice`] parses the `tpm_device` option and the tpm2-tss `TCTI` forms;
//! [`open`] turns it into a [`TpmTransport`]. Keep the transport for the
//! process lifetime: under a resource manager, transient handles belong to
//! the connection.

mod device;
mod hint;
mod transport;

pub use device::{DeviceError, TpmDevice};
pub(crate) use hint::HintSuffix;
pub use transport::{Failure, TpmTransport, TransportError, open};

use std::time::Duration;

/// How long a transport waits for one response: RSA key generation on a
/// discrete TPM can take tens of seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(90);
