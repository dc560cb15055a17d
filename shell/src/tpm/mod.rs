//! TPM transports, the std side of `keylet_core::tpm::transport::Transport`:
//! [`TpmDevice`] parses the `tpm_device` option and the tpm2-tss `TCTI`
//! forms, and [`open`] turns one into a [`TpmTransport`] (a character device
//! or inherited descriptor, swtpm over TCP, or the Microsoft/IBM simulator).
//! Keep the transport for the process lifetime: under a resource manager,
//! transient handles belong to the connection.

mod device;
mod error;
mod hint;
mod transport;

pub use device::{DeviceError, TpmDevice};
pub use error::{Failure, TransportError};
pub(crate) use hint::HintSuffix;
pub use transport::{TpmTransport, open};

use std::time::Duration;

/// How long a transport waits for one response: RSA key generation on a
/// discrete TPM can take tens of seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(90);
