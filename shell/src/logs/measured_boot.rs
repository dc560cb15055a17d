//! The measured-boot (UEFI) event log, sent whole as `mb_measurement_list`.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::LogError;

/// The binary measured-boot event log, opened once and read by offset.
///
/// The firmware log does not change after boot, but keylet re-reads it on
/// every request rather than keeping a copy, so it costs no memory between
/// requests.
#[derive(Debug)]
pub struct MeasuredBootLog {
    path: PathBuf,
    file: File,
}

impl MeasuredBootLog {
    /// Opens the log at `path` (default
    /// `/sys/kernel/security/tpm0/binary_bios_measurements`).
    ///
    /// # Errors
    ///
    /// [`LogError::Open`] if the file cannot be opened.
    pub fn open(path: &Path) -> Result<Self, LogError> {
        let file = super::open_file(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// The path the log was opened from.
    #[must_use]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Reads bytes at `offset`; `Ok(0)` at the end of the log.
    ///
    /// # Errors
    ///
    /// [`LogError::Read`] if the read fails.
    pub(crate) fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize, LogError> {
        read_retrying(&self.file, buf, offset).map_err(|source| LogError::Read {
            path: self.path.clone(),
            source,
        })
    }
}

/// `pread`, retried on `EINTR`.
pub(super) fn read_retrying(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    loop {
        match file.read_at(buf, offset) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}
