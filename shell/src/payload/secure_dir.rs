//! The secure directory, `<keylime_dir>/secure`: a tmpfs, so delivered
//! secrets never reach a disk.
//!
//! Prepared at start-up, before privileges are dropped:
//! * already a tmpfs (mounted by an earlier keylet, the reference agent or
//!   the service manager): used as it is;
//! * another filesystem mounted there: refused;
//! * otherwise, as root: a tmpfs is mounted with mount(2) (`size=secure_size,
//!   mode=0700`, nosuid, nodev) and handed to the `run_as` user; it stays
//!   mounted when keylet exits, so delivered files outlive a restart;
//! * otherwise (not root): a 0700 directory on disk, with a warning.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{MsFlags, mount};
use nix::sys::statfs::{TMPFS_MAGIC, statfs};
use nix::unistd::{chown, geteuid};

use super::PayloadError;
use crate::config::SecureSize;

/// Prepares `<keylime_dir>/secure` as described in the module docs and
/// returns it. `run_as` (user, group) receives the directory when keylet is
/// root.
///
/// # Errors
///
/// [`PayloadError::SecureDir`] naming what is wrong and what to do;
/// [`PayloadError::PayloadRefused`] in a build without the payload
/// feature, which delivers no payloads.
pub fn prepare(
    keylime_dir: &Path,
    size: &SecureSize,
    run_as: Option<&(String, String)>,
) -> Result<PathBuf, PayloadError> {
    if !cfg!(feature = "payload") {
        return Err(PayloadError::PayloadRefused(super::NOT_BUILT));
    }
    let path = keylime_dir.join("secure");
    let fail = |detail: String| PayloadError::SecureDir(path.clone(), detail);
    if let Err(e) = std::fs::create_dir(&path)
        && e.kind() != std::io::ErrorKind::AlreadyExists
    {
        return Err(fail(format!("cannot create it: {e}")));
    }
    // symlink_metadata: a symlink to a directory is refused, not followed
    let here =
        std::fs::symlink_metadata(&path).map_err(|e| fail(format!("cannot inspect it: {e}")))?;
    if !here.is_dir() {
        let detail = "exists but is not a directory (or is a symlink); remove it";
        return Err(fail(detail.into()));
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| fail(format!("cannot set mode 0700: {e}")))?;
    // a delivery's staging directory that a killed keylet left
    crate::store::remove_stale_temporaries(&[&path.join("unzipped")]);
    let owner = crate::privileges::run_as_ids(run_as).map_err(|e| fail(e.to_string()))?;
    // A mount point is on another device than its parent.
    let parent = path.parent().unwrap_or(Path::new("/"));
    let above = std::fs::metadata(parent)
        .map_err(|e| fail(format!("cannot inspect {}: {e}", parent.display())))?;
    if here.dev() != above.dev() {
        let fs = statfs(&path).map_err(|e| fail(format!("statfs failed: {e}")))?;
        if fs.filesystem_type() != TMPFS_MAGIC {
            return Err(fail(
                "another filesystem is mounted there; unmount it so keylet can mount a tmpfs, \
                 or mount a tmpfs there yourself"
                    .into(),
            ));
        }
        log::info!("secure directory {} is an existing tmpfs", path.display());
    } else if !geteuid().is_root() {
        log::warn!(
            "keylet is not root, so it cannot mount a tmpfs: delivered payload secrets go to {}, \
             a 0700 directory on disk; mount a tmpfs there (e.g. systemd TemporaryFileSystem= \
             or an fstab entry) to keep them in memory",
            path.display()
        );
    } else {
        let options = format!("size={},mode=0700", size.text);
        mount(
            Some("tmpfs"),
            &path,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(options.as_str()),
        )
        .map_err(|e| {
            fail(format!(
                "mounting a tmpfs ({options}) failed: {e}; keylet needs CAP_SYS_ADMIN for this"
            ))
        })?;
        log::info!("mounted a tmpfs ({options}) at {}", path.display());
    }
    if let Some((uid, gid)) = owner {
        chown(&path, Some(uid), Some(gid))
            .map_err(|e| fail(format!("cannot hand it to the run_as user: {e}")))?;
    }
    Ok(path)
}
