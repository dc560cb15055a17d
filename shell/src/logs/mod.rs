//! The logs keylet sends with integrity quotes.
//!
//! * [`ImaLog`]: the IMA runtime measurement list (`ascii_runtime_measurements`),
//!   opened once and re-read by offset, with a bounded line-offset index so a
//!   request for line N seeks instead of rescanning.
//! * [`MeasuredBootLog`]: the UEFI event log (`binary_bios_measurements`),
//!   opened once and streamed whole.
//! * [`read_boottime`]: the boot time from `/proc/stat`.
//!
//! Both logs live in securityfs, which only root can open: open them before
//! dropping privileges and keep the returned values. Every read here is a
//! blocking file read; callers on an async runtime keep each call small (one
//! chunk) or run it on the blocking pool.

mod boottime;
mod ima;
mod measured_boot;

pub(crate) use boottime::read_boottime;
pub use ima::{ImaLog, ImaSlice};
pub use measured_boot::MeasuredBootLog;

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a log could not be opened or read.
#[derive(Debug)]
#[non_exhaustive]
pub enum LogError {
    /// The log file could not be opened.
    Open {
        /// The configured path.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// Reading the log failed.
    Read {
        /// The configured path.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// `/proc/stat` has no usable `btime` line.
    NoBootTime,
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Open { path, source } => write!(
                f,
                "cannot open log {}: {source} (it must exist and be opened as root, before privileges are dropped)",
                path.display()
            ),
            Self::Read { path, source } => {
                write!(f, "cannot read log {}: {source}", path.display())
            }
            Self::NoBootTime => f.write_str("/proc/stat has no valid 'btime' line"),
        }
    }
}

impl std::error::Error for LogError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Open { source, .. } | Self::Read { source, .. } => Some(source),
            Self::NoBootTime => None,
        }
    }
}

/// Opens a log file, naming it in the error.
fn open_file(path: &std::path::Path) -> Result<std::fs::File, LogError> {
    std::fs::File::open(path).map_err(|source| LogError::Open {
        path: path.to_path_buf(),
        source,
    })
}
