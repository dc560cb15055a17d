//! Unpacking a zip payload: stored entries, as `keylime_tenant --cert` (and
//! `--include`) makes them, and deflated entries, as `zip` and most tools make
//! them. Other compression methods are refused with a message saying how to
//! make a zip keylet can unpack.
//!
//! A zip bomb is refused before anything is written: the sizes the archive
//! declares must add up to at most `limit` (`secure_size`), and no deflated
//! entry may declare more than deflate can produce from its compressed bytes
//! ([`MAX_DEFLATE_RATIO`]). While unpacking, an entry that inflates past its
//! declared size is refused, so a lying header gains nothing. Entries that
//! would land outside the target directory and symlinks are refused too.

use std::fs::OpenOptions;
use std::io::{Cursor, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use zip::{CompressionMethod, ZipArchive};

use super::PayloadError;
use crate::store::StoreError;

const MAX_ENTRIES: usize = 1024;

/// The most a deflate stream can expand: 258 bytes from one length/distance
/// code of at least 2 bits, about 1032 to 1. An entry that declares more is
/// lying about its sizes.
pub(crate) const MAX_DEFLATE_RATIO: u64 = 1032;

/// Whether `data` starts like a zip archive (a local file header, or the
/// end record of an empty archive).
#[must_use]
pub(crate) fn looks_like_zip(data: &[u8]) -> bool {
    data.starts_with(b"PK\x03\x04") || data.starts_with(b"PK\x05\x06")
}

/// Unpacks `data` into `dir` (which exists), writing at most `limit` bytes.
/// Returns how many files were written.
///
/// Errors: [`PayloadError::Zip`] naming the entry and the problem, or
/// [`PayloadError::Store`] for a file that cannot be written.
pub(crate) fn extract(data: &[u8], dir: &Path, limit: u64) -> Result<usize, PayloadError> {
    let zip_err = |e: zip::result::ZipError| PayloadError::Zip(e.to_string());
    let mut archive = ZipArchive::new(Cursor::new(data)).map_err(zip_err)?;
    if archive.len() > MAX_ENTRIES {
        return Err(PayloadError::Zip(format!(
            "{} entries; at most {MAX_ENTRIES} are unpacked",
            archive.len()
        )));
    }
    check_declared(&mut archive, limit)?;
    let mut written = 0;
    let mut total: u64 = 0;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(zip_err)?;
        let name = entry.name().map_err(zip_err)?.into_owned();
        let declared = entry.size();
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
        if let Some(parent) = target.parent() {
            make_dirs(parent)?;
        }
        let executable = entry.unix_mode().is_some_and(|m| m & 0o100 != 0);
        let mode = if executable { 0o700 } else { 0o600 };
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&target)
            .map_err(StoreError::io("write", &target))?;
        let room = limit.saturating_sub(total).min(declared);
        let mut limited = Read::take(&mut entry, room.saturating_add(1));
        let copied = std::io::copy(&mut limited, &mut file).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => {
                PayloadError::Zip(format!("entry {name:?} is corrupt: {e}"))
            }
            _ => StoreError::io("write", &target)(e).into(),
        })?;
        if copied > declared {
            return Err(PayloadError::Zip(format!(
                "entry {name:?} unpacks to more than the {declared} bytes it declares; \
                 the archive is corrupt or hostile"
            )));
        }
        if copied > room {
            return Err(PayloadError::Zip(format!(
                "unpacked contents exceed secure_size ({limit} bytes); raise secure_size"
            )));
        }
        total = total.saturating_add(copied);
        file.flush().map_err(StoreError::io("write", &target))?;
        written += 1;
    }
    Ok(written)
}

/// Refuses, before anything is written, an archive whose entries use a
/// method keylet cannot unpack, declare more than `limit` bytes in all, or
/// declare more than deflate can produce (a zip bomb or a lying header).
fn check_declared(archive: &mut ZipArchive<Cursor<&[u8]>>, limit: u64) -> Result<(), PayloadError> {
    let mut total: u64 = 0;
    for i in 0..archive.len() {
        let entry = archive
            .by_index_raw(i)
            .map_err(|e| PayloadError::Zip(e.to_string()))?;
        let name = entry
            .name()
            .map_or_else(|_| "?".to_owned(), |n| n.into_owned());
        let (size, packed) = (entry.size(), entry.compressed_size());
        match entry.compression() {
            CompressionMethod::Deflated if size > packed.saturating_mul(MAX_DEFLATE_RATIO) => {
                return Err(PayloadError::Zip(format!(
                    "entry {name:?} declares {size} bytes from {packed} compressed bytes, more \
                     than deflate can produce (1:{MAX_DEFLATE_RATIO}); refused as a zip bomb"
                )));
            }
            CompressionMethod::Stored | CompressionMethod::Deflated => {}
            other => {
                return Err(PayloadError::Zip(format!(
                    "entry {name:?} is compressed with {other}; keylet unpacks stored and \
                     deflated entries (`zip` makes deflated ones by default, `zip -0` stored ones)"
                )));
            }
        }
        total = total.saturating_add(size);
        if total > limit {
            return Err(PayloadError::Zip(format!(
                "the archive declares more than secure_size ({limit} bytes) of unpacked \
                 contents; nothing was unpacked (raise secure_size if the payload is genuine)"
            )));
        }
    }
    Ok(())
}

/// Makes `path` and its missing parents, mode 0700.
pub(crate) fn make_dirs(path: &Path) -> Result<(), PayloadError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| StoreError::io("write", path)(e).into())
}
