//! What can go wrong on a TPM transport, naming the device and the command
//! in flight.

use std::fmt;
use std::io::{self, ErrorKind};
use std::time::Duration;

/// A TPM transport failure.
#[derive(Debug)]
pub struct TransportError {
    /// The device as configured.
    pub(crate) device: String,
    /// The command code in flight (0 while opening).
    pub(crate) cc: u32,
    pub failure: Failure,
}

/// What went wrong on a TPM transport.
#[derive(Debug)]
#[non_exhaustive]
pub enum Failure {
    /// The device could not be opened or connected to: the OS error.
    Open(io::Error),
    /// `"write"`, `"read"` or `"poll"` failed with the OS error.
    Io(&'static str, io::Error),
    /// No complete response arrived within this many seconds.
    Timeout(u64),
    /// The peer closed the connection mid-response.
    Closed,
    /// The response header declares a `size` that is impossible or does not
    /// fit the response buffer's `capacity`.
    BadSize { size: usize, capacity: usize },
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { device, cc, .. } = self;
        match &self.failure {
            Failure::Open(source) => write!(
                f,
                "cannot open TPM {device}: {source} (check tpm_device, permissions of the device \
                 node, or that swtpm is running)"
            ),
            Failure::Io(op, source) => {
                write!(f, "TPM {device}: {op} failed for command {cc:#x}: {source}")
            }
            Failure::Timeout(seconds) => write!(
                f,
                "TPM {device}: no response to command {cc:#x} within {seconds} s"
            ),
            Failure::Closed => write!(
                f,
                "TPM {device} closed the connection while answering command {cc:#x}"
            ),
            Failure::BadSize { size, capacity } => write!(
                f,
                "TPM {device}: response to command {cc:#x} declares {size} bytes \
                 (buffer holds {capacity}, header needs 10)"
            ),
        }
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.failure {
            Failure::Open(source) | Failure::Io(_, source) => Some(source),
            _ => None,
        }
    }
}

impl TransportError {
    /// `device` could not be opened, for the reason `detail`.
    pub(crate) fn open(device: String, detail: String) -> Self {
        let failure = Failure::Open(io::Error::other(detail));
        Self {
            device,
            cc: 0,
            failure,
        }
    }
}

/// Builds the errors of one command `cc` (0 while connecting) on one device.
pub(super) struct Fail<'a> {
    pub(super) device: &'a str,
    pub(super) cc: u32,
    pub(super) timeout: Duration,
}

impl Fail<'_> {
    pub(super) fn err(&self, failure: Failure) -> TransportError {
        TransportError {
            device: self.device.to_owned(),
            cc: self.cc,
            failure,
        }
    }

    /// A set-up step failed for the reason `detail`.
    pub(super) fn open(&self, detail: String) -> TransportError {
        TransportError::open(self.device.to_owned(), detail)
    }

    pub(super) fn bad_size(&self, size: usize, capacity: usize) -> TransportError {
        self.err(Failure::BadSize { size, capacity })
    }

    /// A write error: a timeout, the peer taking no more bytes, or another
    /// failure of `op`.
    pub(super) fn stream(&self, op: &'static str, e: io::Error) -> TransportError {
        self.err(match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => Failure::Timeout(self.timeout.as_secs()),
            ErrorKind::WriteZero => Failure::Closed,
            _ => Failure::Io(op, e),
        })
    }
}
