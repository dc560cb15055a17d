//! TPM transports: the std side of `keylet_core::tpm::transport::Transport`.
//!
//! * [`FdTransport`]: a TPM character device (`/dev/tpmrm0`, `/dev/tpm0`) or
//!   any already-open descriptor with the same one-write-one-read semantics
//!   (an inherited device fd, one end of a socketpair to `swtpm chardev`).
//! * [`TcpTransport`]: swtpm's TCP data port (raw frames, one `write_all` per
//!   command).
//! * [`MssimTransport`]: the Microsoft/IBM TPM simulator (framed commands,
//!   power-on on its platform port).
//!
//! [`TpmDevice`] parses the `tpm_device` option and the tpm2-tss `TCTI` forms;
//! [`open`] turns it into a [`TpmTransport`]. Keep the transport for the
//! process lifetime: under a resource manager, transient handles belong to
//! the connection.

mod device;
mod error;
mod fd;
mod frame;
mod hint;
mod mssim;
mod tcp;

pub use device::{DeviceError, TpmDevice};
pub use error::TransportError;
pub use fd::FdTransport;
pub(crate) use hint::{HintSuffix, Hinted};
pub use mssim::MssimTransport;
pub use tcp::TcpTransport;
// metrics: TPM command timing names commands by their code
pub(crate) use frame::command_code;

use std::time::Duration;

use keylet_core::tpm::transport::Transport;

/// How long a transport waits for one response: RSA key generation on a
/// discrete TPM can take tens of seconds.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(90);

/// Any of the transports keylet supports.
#[derive(Debug)]
pub enum TpmTransport {
    /// A character device or open descriptor.
    Fd(FdTransport),
    /// swtpm over TCP.
    Tcp(TcpTransport),
    /// The Microsoft/IBM TPM simulator.
    Mssim(MssimTransport),
}

/// Opens the TPM named by `device`.
///
/// # Errors
///
/// [`TransportError::Open`] naming the device if it cannot be opened.
pub fn open(device: &TpmDevice) -> Result<TpmTransport, TransportError> {
    open_with_timeout(device, DEFAULT_TIMEOUT)
}

/// Opens the TPM named by `device`, waiting at most `timeout` for each
/// response.
///
/// # Errors
///
/// [`TransportError::Open`] naming the device if it cannot be opened.
pub(crate) fn open_with_timeout(
    device: &TpmDevice,
    timeout: Duration,
) -> Result<TpmTransport, TransportError> {
    Ok(match device {
        TpmDevice::Path(path) => TpmTransport::Fd(FdTransport::open(path, timeout)?),
        TpmDevice::Fd(n) => TpmTransport::Fd(FdTransport::from_inherited(*n, timeout)?),
        TpmDevice::Tcp { host, port } => {
            TpmTransport::Tcp(TcpTransport::connect(host, *port, timeout)?)
        }
        TpmDevice::Mssim { host, port } => {
            TpmTransport::Mssim(MssimTransport::connect(host, *port, timeout)?)
        }
    })
}

impl Transport for TpmTransport {
    type Error = TransportError;

    fn transact(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, TransportError> {
        match self {
            Self::Fd(t) => t.transact(command, response),
            Self::Tcp(t) => t.transact(command, response),
            Self::Mssim(t) => t.transact(command, response),
        }
    }

    fn backoff(&mut self, attempt: u32) {
        frame::backoff(attempt);
    }
}
