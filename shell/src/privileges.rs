//! Dropping root after the TPM and the logs are open (`run_as`).

use nix::fcntl::AT_FDCWD;
use nix::unistd::{
    Gid, Group, Uid, User, getegid, geteuid, getgid, getuid, setgid, setgroups, setuid,
};

fn sys(call: &'static str) -> impl Fn(nix::Error) -> String {
    move |errno| format!("{call} failed: {errno}")
}

/// A `run_as` user or group that does not exist, and what to do.
fn unknown(kind: &str, name: &str) -> String {
    format!(
        "{kind} {name:?} of option run_as does not exist; create it (useradd --system keylime; \
         the group usually is tss) or set run_as to \"\" to keep the current user"
    )
}

/// The uid and gid keylet drops to: those of `run_as` when it is set and
/// keylet runs as root, else `None`. Errors: the user or group is unknown.
pub(crate) fn run_as_ids(run_as: Option<&(String, String)>) -> Result<Option<(Uid, Gid)>, String> {
    let Some((user, group)) = run_as.filter(|_| geteuid().is_root()) else {
        return Ok(None);
    };
    let u = User::from_name(user)
        .map_err(sys("getpwnam"))?
        .ok_or_else(|| unknown("user", user))?;
    let g = Group::from_name(group)
        .map_err(sys("getgrnam"))?
        .ok_or_else(|| unknown("group", group))?;
    Ok(Some((u.uid, g.gid)))
}

/// Before the drop: gives `files` that root owns to the `run_as` user, so
/// that keylet can read them again after it (the mTLS key and certificate
/// it generated in keylime_dir, re-read on SIGHUP). Missing files, files
/// already owned by someone else, and anything but a regular file with one
/// link (a symlink or hard link planted by the unprivileged user must not
/// make root give away another file) are left alone.
pub(crate) fn hand_over(
    run_as: Option<&(String, String)>,
    files: &[&std::path::Path],
) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt as _;
    let Some((uid, gid)) = run_as_ids(run_as)? else {
        return Ok(());
    };
    for file in files {
        let meta = std::fs::symlink_metadata(file);
        if !meta.is_ok_and(|m| m.uid() == 0 && m.is_file() && m.nlink() == 1) {
            continue;
        }
        let no_follow = nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW;
        nix::unistd::fchownat(AT_FDCWD, *file, Some(uid), Some(gid), no_follow)
            .map_err(sys("chown"))?;
        log::debug!("{} handed to the run_as user", file.display());
    }
    Ok(())
}

/// Switches to `user:group` (with `group` as the only supplementary group) if
/// running as root, and verifies that root cannot be regained.
pub(crate) fn drop_to(run_as: Option<&(String, String)>) -> Result<(), String> {
    let Some((user, group)) = run_as else {
        if geteuid().is_root() {
            log::warn!(
                "running as root: set run_as (e.g. keylime:tss) to drop privileges after start-up"
            );
        }
        return Ok(());
    };
    let Some((uid, gid)) = run_as_ids(run_as)? else {
        log::debug!("not root; run_as {user}:{group} is not applied");
        return Ok(());
    };
    setgroups(&[gid]).map_err(sys("setgroups"))?;
    setgid(gid).map_err(sys("setgid"))?;
    setuid(uid).map_err(sys("setuid"))?;
    let regained = setuid(Uid::from_raw(0)).is_ok() || setgid(Gid::from_raw(0)).is_ok();
    if regained || getuid() != uid || geteuid() != uid || getgid() != gid || getegid() != gid {
        return Err("root privileges are still available after the drop".into());
    }
    log::info!("dropped privileges to {user}:{group}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt as _;

    use super::*;

    #[test]
    fn hand_over_gives_root_owned_files_to_the_run_as_user_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("server-private.pem");
        let linked = dir.path().join("linked.pem");
        let other = dir.path().join("other.pem");
        std::fs::write(&key, "key").unwrap();
        std::fs::write(&other, "elsewhere").unwrap();
        std::fs::hard_link(&other, &linked).unwrap();
        let link = dir.path().join("server-cert.crt");
        std::os::unix::fs::symlink(&other, &link).unwrap();
        let run_as = ("nobody".to_string(), "nogroup".to_string());
        let files = [key.as_path(), linked.as_path(), link.as_path()];
        let root = geteuid().is_root();
        let ids = run_as_ids(Some(&run_as)).unwrap();
        assert_eq!(ids.is_some(), root, "ids only when there is a drop to make");
        hand_over(Some(&run_as), &files).unwrap();
        let uid = |p: &std::path::Path| std::fs::metadata(p).unwrap().uid();
        if let Some((nobody, _)) = ids {
            assert_eq!(uid(&key), nobody.as_raw(), "the key is the run_as user's");
            assert_eq!(uid(&other), 0, "a hard-linked file stays root's");
        } else {
            assert_eq!(uid(&key), geteuid().as_raw(), "not root: nothing changes");
        }
        // no user to hand over to: an error naming it, when there is a drop to make
        let unknown = ("no-such-keylet-user".to_string(), "tss".to_string());
        assert_eq!(hand_over(Some(&unknown), &files).is_err(), root);
        hand_over(None, &files).unwrap();
    }
}
