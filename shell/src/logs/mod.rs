//! The logs keylet sends with integrity quotes: [`ImaLog`], the IMA runtime
//! measurement list with a bounded line-offset index (a request for line N
//! seeks instead of rescanning); [`MeasuredBootLog`], the UEFI event log, sent
//! whole; [`read_boottime`], `btime` of `/proc/stat`, sent as `boottime` so the
//! verifier resets its IMA state cleanly after a reboot.
//!
//! Both logs live in securityfs, which only root can open: open them before
//! dropping privileges. Every read here blocks; callers on an async runtime
//! keep each call small (one chunk) or run it on the blocking pool.

mod ima;

pub use ima::{ImaLog, ImaSlice};

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a log (or `/proc/stat`) at a path could not be opened or read: the
/// operating system's reason, or what the file lacks.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(
        "cannot open log {path}: {1} (it must exist and be opened as root, before privileges \
         are dropped)",
        path = .0.display()
    )]
    Open(PathBuf, #[source] io::Error),
    #[error("cannot read {path}: {1}", path = .0.display())]
    Read(PathBuf, #[source] io::Error),
}

/// A log file, opened once (as root, before the drop) and read by offset.
///
/// The measured-boot (UEFI) event log is one as it is, sent whole as
/// `mb_measurement_list`: the firmware log does not change after boot, but
/// keylet re-reads it on every request rather than keeping a copy, so it costs
/// no memory between requests. [`ImaLog`] adds its line index to one.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    file: File,
    /// Where the last read ended.
    next: AtomicU64,
}

/// The binary measured-boot event log (default
/// `/sys/kernel/security/tpm0/binary_bios_measurements`).
pub type MeasuredBootLog = LogFile;

impl LogFile {
    /// Opens the log at `path`.
    ///
    /// # Errors
    ///
    /// [`LogError`] if the file cannot be opened.
    pub fn open(path: &Path) -> Result<Self, LogError> {
        let file = File::open(path).map_err(|e| LogError::Open(path.into(), e))?;
        let (path, next) = (path.to_path_buf(), AtomicU64::new(0));
        Ok(Self { path, file, next })
    }

    #[must_use]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Reads bytes at `offset` (`pread`, retried on `EINTR`); `Ok(0)` at the
    /// end of the log.
    ///
    /// # Errors
    ///
    /// [`LogError`] if the read fails.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize, LogError> {
        loop {
            match self.file.read_at(buf, offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(LogError::Read(self.path.clone(), e)),
                Ok(n) => {
                    let next = offset.saturating_add(n as u64);
                    self.next.store(next, Ordering::Relaxed);
                    return Ok(n);
                }
            }
        }
    }

    /// Whether a read at `offset` follows on from the last one: securityfs
    /// (seq_file) formats its list again from the first entry for any other.
    pub(crate) fn follows_on(&self, offset: u64) -> bool {
        offset == 0 || self.next.load(Ordering::Relaxed) == offset
    }
}

/// Reads the boot time, in seconds since the epoch, from `/proc/stat`.
///
/// Read it once at start: the kernel derives `btime` from the wall clock, so a
/// clock adjustment can move it by a second, and a changed value makes the
/// verifier skip one quote check.
///
/// Errors: [`LogError`] if `/proc/stat` cannot be read or has no valid `btime` line.
pub(crate) fn read_boottime() -> Result<u64, LogError> {
    let path = Path::new("/proc/stat");
    let text = std::fs::read_to_string(path).map_err(|e| LogError::Read(path.into(), e))?;
    parse_btime(&text)
        .ok_or_else(|| LogError::Read(path.into(), io::Error::other("no valid 'btime' line")))
}

/// The value of the `btime` line of a `/proc/stat` text, if present and valid.
#[must_use]
pub(crate) fn parse_btime(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn btime_is_found_among_other_lines_and_missing_or_garbled_is_none() {
        let stat = "cpu  1 2 3\nintr 5 6\nctxt 77\nbtime 1767225600\nprocesses 9\n";
        assert_eq!(parse_btime(stat), Some(1_767_225_600));
        for bad in ["cpu 1\nctxt 2\n", "btime soon\n", "btimex 5\n"] {
            assert_eq!(parse_btime(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn reads_this_machines_boot_time() {
        let t = read_boottime();
        assert!(matches!(t, Ok(v) if v > 1_000_000_000), "{t:?}");
    }
}
