//! Transport errors: every one names the device and, once a command is in
//! flight, its command code.

use std::fmt;
use std::io;

/// A TPM transport failure.
#[derive(Debug)]
#[non_exhaustive]
pub enum TransportError {
    /// The device could not be opened or connected to.
    Open {
        /// The device as configured.
        device: String,
        /// The OS error.
        source: io::Error,
    },
    /// Writing a command or reading a response failed.
    Io {
        /// The device.
        device: String,
        /// The command code in flight.
        cc: u32,
        /// `"write"`, `"read"` or `"poll"`.
        op: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// No complete response arrived in time.
    Timeout {
        /// The device.
        device: String,
        /// The command code in flight.
        cc: u32,
        /// Seconds waited.
        seconds: u64,
    },
    /// The peer closed the connection mid-response.
    Closed {
        /// The device.
        device: String,
        /// The command code in flight.
        cc: u32,
    },
    /// The response header declares a size that is impossible or does not fit.
    BadSize {
        /// The device.
        device: String,
        /// The command code in flight.
        cc: u32,
        /// The declared size.
        size: usize,
        /// The response buffer's capacity.
        capacity: usize,
    },
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Open { device, source } => write!(
                f,
                "cannot open TPM {device}: {source} (check tpm_device, permissions of the device \
                 node, or that swtpm is running)"
            ),
            Self::Io {
                device,
                cc,
                op,
                source,
            } => write!(f, "TPM {device}: {op} failed for command {cc:#x}: {source}"),
            Self::Timeout {
                device,
                cc,
                seconds,
            } => write!(
                f,
                "TPM {device}: no response to command {cc:#x} within {seconds} s"
            ),
            Self::Closed { device, cc } => write!(
                f,
                "TPM {device} closed the connection while answering command {cc:#x}"
            ),
            Self::BadSize {
                device,
                cc,
                size,
                capacity,
            } => write!(
                f,
                "TPM {device}: response to command {cc:#x} declares {size} bytes \
                 (buffer holds {capacity}, header needs 10)"
            ),
        }
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Open { source, .. } | Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
