//! The secure directory on the real system: a tmpfs mounted with mount(2)
//! when keylet is root, reused when already there, refused over another
//! filesystem; a 0700 directory when not root.
#![cfg(feature = "payload")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use keylet::config::SecureSize;
use keylet::payload::secure_dir;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::unistd::geteuid;

fn size() -> SecureSize {
    SecureSize {
        text: "64k".into(),
        bytes: 64 * 1024,
    }
}

/// The filesystem type /proc/mounts lists for `path`, if it is a mount point.
fn mounted_type(path: &Path) -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let want = path.to_str().unwrap();
    mounts
        .lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .rfind(|f| f.get(1) == Some(&want))
        .map(|f| f[2].to_owned())
}

/// Unmounts `path` when dropped, so a failing test leaves no mount behind.
struct Unmount<'a>(&'a Path);

impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        while mounted_type(self.0).is_some() {
            if umount2(self.0, MntFlags::MNT_DETACH).is_err() {
                break;
            }
        }
    }
}

#[test]
fn root_mounts_a_tmpfs_once_and_others_get_a_private_directory() {
    let keylime_dir = tempfile::tempdir().unwrap();
    let secure = keylime_dir.path().join("secure");
    let _cleanup = Unmount(&secure);
    let dir = secure_dir::prepare(keylime_dir.path(), &size(), None).unwrap();
    assert_eq!(dir, secure);
    let mode = std::fs::metadata(&secure).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    if geteuid().is_root() {
        assert_eq!(mounted_type(&secure).as_deref(), Some("tmpfs"));
        let opts = std::fs::read_to_string("/proc/mounts").unwrap();
        let line = opts
            .lines()
            .find(|l| l.contains(secure.to_str().unwrap()))
            .unwrap();
        assert!(line.contains("size=64k"), "{line}");
        assert!(line.contains("nosuid") && line.contains("nodev"), "{line}");
        // A restart finds the tmpfs and does not stack a second one.
        let again = secure_dir::prepare(keylime_dir.path(), &size(), None).unwrap();
        assert_eq!(again, secure);
        assert_eq!(mounted_type(&secure).as_deref(), Some("tmpfs"));
        let count = std::fs::read_to_string("/proc/mounts")
            .unwrap()
            .lines()
            .filter(|l| l.contains(secure.to_str().unwrap()))
            .count();
        assert_eq!(count, 1);
    } else {
        assert_eq!(mounted_type(&secure), None);
    }
}

/// Only root can put a foreign mount there (scripts/test-all.sh step `test-root`).
#[test]
#[ignore = "needs root: mounts /proc there; scripts/test-all.sh runs it as root"]
fn another_filesystem_mounted_there_is_refused() {
    assert!(
        geteuid().is_root(),
        "this test needs root (it bind-mounts /proc)"
    );
    let keylime_dir = tempfile::tempdir().unwrap();
    let secure = keylime_dir.path().join("secure");
    std::fs::create_dir(&secure).unwrap();
    let _cleanup = Unmount(&secure);
    // A bind mount of /proc: a filesystem that is not a tmpfs.
    let source = Path::new("/proc");
    mount(
        Some(source),
        &secure,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    let err = secure_dir::prepare(keylime_dir.path(), &size(), None).unwrap_err();
    assert!(err.to_string().contains("another filesystem"), "{err}");
}

#[test]
fn a_file_in_place_of_the_directory_is_refused() {
    let keylime_dir = tempfile::tempdir().unwrap();
    std::fs::write(keylime_dir.path().join("secure"), b"x").unwrap();
    let err = secure_dir::prepare(keylime_dir.path(), &size(), None).unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
}
