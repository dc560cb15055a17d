//! Transport errors: every one names the device and, once a command is in
//! flight, its command code.

use std::fmt;
use std::io;
use std::time::Duration;

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

/// The errors of one command `cc` (0 while connecting) on one device.
pub(super) struct Fail<'a> {
    pub(super) device: &'a str,
    pub(super) cc: u32,
    pub(super) timeout: Duration,
}

impl<'a> Fail<'a> {
    /// The errors of opening or setting up `device`.
    pub(super) fn at(device: &'a str, timeout: Duration) -> Self {
        Self {
            device,
            cc: 0,
            timeout,
        }
    }

    pub(super) fn opening(&self, source: io::Error) -> TransportError {
        TransportError::Open {
            device: self.device.to_owned(),
            source,
        }
    }

    pub(super) fn open(&self, detail: String) -> TransportError {
        self.opening(io::Error::other(detail))
    }

    pub(super) fn io(&self, op: &'static str, source: io::Error) -> TransportError {
        TransportError::Io {
            device: self.device.to_owned(),
            cc: self.cc,
            op,
            source,
        }
    }

    pub(super) fn timed_out(&self) -> TransportError {
        TransportError::Timeout {
            device: self.device.to_owned(),
            cc: self.cc,
            seconds: self.timeout.as_secs(),
        }
    }

    pub(super) fn closed(&self) -> TransportError {
        TransportError::Closed {
            device: self.device.to_owned(),
            cc: self.cc,
        }
    }

    pub(super) fn bad_size(&self, size: usize, capacity: usize) -> TransportError {
        TransportError::BadSize {
            device: self.device.to_owned(),
            cc: self.cc,
            size,
            capacity,
        }
    }

    /// A socket error: a read or write timeout, the peer closing mid-frame,
    /// or another failure of `op`.
    pub(super) fn stream(&self, op: &'static str, e: io::Error) -> TransportError {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => self.timed_out(),
            io::ErrorKind::UnexpectedEof => self.closed(),
            _ => self.io(op, e),
        }
    }
}
