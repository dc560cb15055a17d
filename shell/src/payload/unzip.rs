//! Unpacking a zip payload, as `keylime_tenant --cert` (and `--include`)
//! makes it: stored (uncompressed) entries. Compressed entries are refused
//! with a message saying how to make a zip keylet can unpack.
//!
//! Entries that would land outside the target directory, symlinks, and more
//! than `limit` bytes in all are refused before anything is written past them.

use std::fs::OpenOptions;
use std::io::{Cursor, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use zip::{CompressionMethod, ZipArchive};

use super::PayloadError;

/// At most this many entries.
const MAX_ENTRIES: usize = 1024;

/// Whether `data` starts like a zip archive (a local file header, or the
/// end record of an empty archive).
#[must_use]
pub fn looks_like_zip(data: &[u8]) -> bool {
    data.starts_with(b"PK\x03\x04") || data.starts_with(b"PK\x05\x06")
}

/// Unpacks `data` into `dir` (which exists), writing at most `limit` bytes.
/// Returns the files written.
///
/// # Errors
///
/// [`PayloadError::Zip`] naming the entry and the problem, or
/// [`PayloadError::Write`].
pub fn extract(data: &[u8], dir: &Path, limit: u64) -> Result<Vec<PathBuf>, PayloadError> {
    let zip_err = |e: zip::result::ZipError| PayloadError::Zip(e.to_string());
    let mut archive = ZipArchive::new(Cursor::new(data)).map_err(zip_err)?;
    if archive.len() > MAX_ENTRIES {
        return Err(PayloadError::Zip(format!(
            "{} entries; at most {MAX_ENTRIES} are unpacked",
            archive.len()
        )));
    }
    let mut written = Vec::new();
    let mut total: u64 = 0;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(zip_err)?;
        let name = entry.name().map_err(zip_err)?.into_owned();
        let Some(relative) = entry.enclosed_name() else {
            return Err(PayloadError::Zip(format!(
                "entry {name:?} points outside the payload directory"
            )));
        };
        let target = dir.join(&relative);
        if entry.is_symlink() {
            return Err(PayloadError::Zip(format!(
                "entry {name:?} is a symlink; keylet does not unpack symlinks"
            )));
        }
        if entry.is_dir() {
            make_dirs(&target)?;
            continue;
        }
        if entry.compression() != CompressionMethod::Stored {
            return Err(PayloadError::Zip(format!(
                "entry {name:?} is compressed ({:?}); keylet unpacks only stored entries, as \
                 keylime_tenant makes them (use `zip -0` for your own payloads)",
                entry.compression()
            )));
        }
        if let Some(parent) = target.parent() {
            make_dirs(parent)?;
        }
        let executable = entry.unix_mode().is_some_and(|m| m & 0o100 != 0);
        let mode = if executable { 0o700 } else { 0o600 };
        let write_err = |source| PayloadError::Write {
            path: target.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&target)
            .map_err(write_err)?;
        let room = limit.saturating_sub(total);
        let mut limited = Read::take(&mut entry, room.saturating_add(1));
        let copied = std::io::copy(&mut limited, &mut file).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => {
                PayloadError::Zip(format!("entry {name:?} is corrupt: {e}"))
            }
            _ => write_err(e),
        })?;
        if copied > room {
            return Err(PayloadError::Zip(format!(
                "unpacked contents exceed secure_size ({limit} bytes); raise secure_size"
            )));
        }
        total = total.saturating_add(copied);
        file.flush().map_err(write_err)?;
        written.push(target);
    }
    Ok(written)
}

fn make_dirs(path: &Path) -> Result<(), PayloadError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| PayloadError::Write {
            path: path.to_path_buf(),
            source,
        })
}
