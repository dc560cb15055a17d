//! Files in keylet's state directory: written atomically with mode 0600,
//! read back only if nobody else can read them.
//!
//! A write goes to a temporary file in the same directory (created 0600,
//! exclusive), is fsynced, renamed over the target, and the directory is
//! fsynced: a crash leaves either the old file or the new one, never half of
//! either, and an existing file is never truncated before its replacement is
//! on disk. A temporary file is named `.<name>.tmp-<pid>` (so is a payload
//! delivery's staging directory, `payload/deliver.rs`): one that a killed
//! process left behind is removed by [`remove_stale_temporaries`] at the next
//! start.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;
use zeroize::Zeroizing;

/// Why one of keylet's files (the agent state, a key, a certificate) could
/// not be read, written or made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The action on the file failed with the error.
    #[error("cannot {0} {path}: {2}", path = .1.display())]
    Io(&'static str, PathBuf, #[source] io::Error),
    #[error(
        "{} has mode {:04o}: a key file must not be accessible by group or others; \
         run `chmod 600 {}` (and check who could have read it)",
        .path.display(),
        .mode & 0o7777,
        .path.display()
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("{} exists but is not a regular file", .0.display())]
    NotAFile(PathBuf),
    /// The file does not hold what keylet expects: what is wrong and what to do.
    #[error("{path}: {1}", path = .0.display())]
    Invalid(PathBuf, String),
    /// A password-protected key was configured in this option.
    #[error(
        "option {0} is set, but keylet does not read password-protected keys; \
         leave it empty and protect the key file with its 0600 mode and the state directory"
    )]
    PasswordUnsupported(&'static str),
    /// Generating what is named failed, with the error.
    #[error("cannot generate the {0}: {1}")]
    Generate(&'static str, String),
}

impl StoreError {
    /// [`StoreError::Invalid`]: `path` does not hold what keylet expects.
    pub(crate) fn invalid(path: &Path, detail: impl Into<String>) -> Self {
        Self::Invalid(path.to_path_buf(), detail.into())
    }

    /// [`StoreError::Generate`] from the error of making `what`.
    pub(crate) fn generate<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> Self {
        move |e| Self::Generate(what, e.to_string())
    }

    /// [`StoreError::Io`] from the error of `action` on `path`.
    pub(crate) fn io<'p>(
        action: &'static str,
        path: &'p Path,
    ) -> impl FnOnce(io::Error) -> Self + use<'p> {
        move |e| Self::Io(action, path.to_path_buf(), e)
    }
}

/// The temporary file `write_private` uses for `path` in this process.
pub(crate) fn temporary(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    dir_of(path).join(format!(".{name}.tmp-{}", std::process::id()))
}

/// The directory `path` is in (`.` for a bare file name).
pub(crate) fn dir_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Removes the temporary files (or directories) that processes killed while
/// writing one of `targets` left next to it (`.<name>.tmp-<pid>` of a pid
/// that no longer runs); returns how many were removed. Errors are ignored: a
/// temporary that cannot be removed is reported again at the next start.
pub fn remove_stale_temporaries(targets: &[&Path]) -> usize {
    let mut removed = 0;
    for target in targets {
        let name = target.file_name().unwrap_or_default().to_string_lossy();
        let prefix = format!(".{name}.tmp-");
        let Ok(entries) = fs::read_dir(dir_of(target)) else {
            continue;
        };
        for entry in entries.flatten() {
            let file = entry.file_name();
            let Some(pid) = file
                .to_string_lossy()
                .strip_prefix(&prefix)
                .and_then(|p| p.parse::<i32>().ok())
            else {
                continue;
            };
            // A temporary of a process that still runs is its own.
            let gone = kill(Pid::from_raw(pid), None) == Err(Errno::ESRCH);
            // file_type does not follow a symlink: a link is removed, never what it names
            let remove: fn(PathBuf) -> io::Result<()> = match entry.file_type() {
                Ok(t) if t.is_dir() => fs::remove_dir_all,
                _ => fs::remove_file,
            };
            if pid > 0 && gone && remove(entry.path()).is_ok() {
                log::warn!(
                    "removed {}, left by a keylet that stopped while writing {}",
                    entry.path().display(),
                    target.display()
                );
                removed += 1;
            }
        }
    }
    removed
}

/// Writes `data` to `path` atomically with mode 0600.
///
/// # Errors
///
/// [`StoreError::Io`] naming the step and file; the previous content of
/// `path`, if any, is untouched on error.
pub fn write_private(path: &Path, data: &[u8]) -> Result<(), StoreError> {
    let dir = dir_of(path);
    let tmp = temporary(path);
    // A stale temporary from a crashed earlier run of this pid is ours to replace.
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(StoreError::io("create", &tmp))?;
        file.write_all(data)
            .map_err(StoreError::io("write", &tmp))?;
        file.sync_all().map_err(StoreError::io("fsync", &tmp))?;
        fs::rename(&tmp, path).map_err(StoreError::io("rename into place", path))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(StoreError::io("fsync directory", dir))
    })();
    result.inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

/// [`read`] of a secret file.
///
/// Errors: As [`read`].
pub(crate) fn read_private(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
    read(path, true)
}

/// Reads a file; `Ok(None)` if it does not exist. A `secret` one is refused
/// if group or others have any access; a public one is a certificate.
///
/// Errors: [`StoreError::TooOpen`], [`StoreError::NotAFile`] or [`StoreError::Io`].
pub(crate) fn read(path: &Path, secret: bool) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io("open", path)(e)),
    };
    let meta = file.metadata().map_err(StoreError::io("stat", path))?;
    if !meta.is_file() {
        return Err(StoreError::NotAFile(path.to_path_buf()));
    }
    if secret && meta.mode() & 0o077 != 0 {
        return Err(StoreError::TooOpen {
            path: path.to_path_buf(),
            mode: meta.permissions().mode(),
        });
    }
    let mut data = Zeroizing::new(Vec::with_capacity(
        usize::try_from(meta.size()).unwrap_or(0),
    ));
    file.read_to_end(&mut data)
        .map_err(StoreError::io("read", path))?;
    Ok(Some(data))
}

/// Writes a public file (a certificate) atomically, mode 0644.
///
/// Errors: As [`write_private`].
pub(crate) fn write_public(path: &Path, data: &[u8]) -> Result<(), StoreError> {
    write_private(path, data)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644))
        .map_err(StoreError::io("chmod", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_0600_atomic_and_a_failed_one_keeps_the_old_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key.pem");
        write_private(&p, b"one").unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        write_private(&p, b"two").unwrap();
        assert_eq!(read_private(&p).unwrap().unwrap().as_slice(), b"two");
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "temporary files left: {leftovers:?}");
        // A directory where the temporary file would go makes the write fail.
        let blocker = dir
            .path()
            .join(format!(".key.pem.tmp-{}", std::process::id()));
        fs::create_dir(&blocker).unwrap();
        fs::write(blocker.join("x"), b"").unwrap();
        assert!(write_private(&p, b"three").is_err());
        assert_eq!(fs::read(&p).unwrap(), b"two");
    }

    #[test]
    fn temporaries_of_killed_writers_are_removed_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state");
        write_private(&p, b"kept").unwrap();
        // A pid that does not run (beyond pid_max), ours, and another file's.
        let dead = dir.path().join(".state.tmp-2147483646");
        let ours = temporary(&p);
        let other = dir.path().join(".other.tmp-2147483646");
        for f in [&dead, &ours, &other] {
            fs::write(f, b"half").unwrap();
        }
        assert_eq!(remove_stale_temporaries(&[&p]), 1);
        assert!(!dead.exists());
        assert!(ours.exists(), "a running writer's temporary is left alone");
        assert!(
            other.exists(),
            "only temporaries of the named targets are touched"
        );
        assert_eq!(fs::read(&p).unwrap(), b"kept");
    }

    #[test]
    fn missing_files_are_none_open_secrets_and_directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key.pem");
        assert!(read_private(&p).unwrap().is_none());
        assert!(read(&p, false).unwrap().is_none());
        write_private(&p, b"secret").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        let err = read_private(&p).unwrap_err();
        assert!(matches!(err, StoreError::TooOpen { .. }));
        assert!(err.to_string().contains("chmod 600"), "{err}");
        let dir_err = read(dir.path(), false);
        assert!(matches!(dir_err, Err(StoreError::NotAFile { .. })));
    }
}
