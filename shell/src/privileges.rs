//! Dropping root after the TPM and the logs are open (`run_as`).

use nix::unistd::{
    Gid, Group, Uid, User, getegid, geteuid, getgid, getuid, setgid, setgroups, setuid,
};

/// Why the privilege drop failed.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum PrivilegeError {
    /// The user or group does not exist.
    Unknown {
        /// `user` or `group`.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// A system call failed.
    Sys {
        /// Which.
        call: &'static str,
        /// The error.
        errno: nix::Error,
    },
    /// After the drop, the process could still regain root.
    NotDropped,
}

impl std::fmt::Display for PrivilegeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unknown { kind, name } => write!(
                f,
                "{kind} {name:?} of option run_as does not exist; create it (useradd --system \
                 keylime; the group usually is tss) or set run_as to \"\" to keep the current user"
            ),
            Self::Sys { call, errno } => write!(f, "{call} failed: {errno}"),
            Self::NotDropped => f.write_str("root privileges are still available after the drop"),
        }
    }
}

impl std::error::Error for PrivilegeError {}

/// Switches to `user:group` (with `group` as the only supplementary group) if
/// running as root; verifies that root cannot be regained. Does nothing when
/// `run_as` is unset or the process is not root.
///
/// # Errors
///
/// [`PrivilegeError`] naming what failed.
pub(crate) fn drop_to(run_as: Option<&(String, String)>) -> Result<(), PrivilegeError> {
    let Some((user, group)) = run_as else {
        if geteuid().is_root() {
            log::warn!(
                "running as root: set run_as (e.g. keylime:tss) to drop privileges after start-up"
            );
        }
        return Ok(());
    };
    if !geteuid().is_root() {
        log::debug!("not root; run_as {user}:{group} is not applied");
        return Ok(());
    }
    let sys = |call| move |errno| PrivilegeError::Sys { call, errno };
    let u = User::from_name(user)
        .map_err(sys("getpwnam"))?
        .ok_or_else(|| PrivilegeError::Unknown {
            kind: "user",
            name: user.clone(),
        })?;
    let g = Group::from_name(group)
        .map_err(sys("getgrnam"))?
        .ok_or_else(|| PrivilegeError::Unknown {
            kind: "group",
            name: group.clone(),
        })?;
    setgroups(&[g.gid]).map_err(sys("setgroups"))?;
    setgid(g.gid).map_err(sys("setgid"))?;
    setuid(u.uid).map_err(sys("setuid"))?;
    if setuid(Uid::from_raw(0)).is_ok() || setgid(Gid::from_raw(0)).is_ok() {
        return Err(PrivilegeError::NotDropped);
    }
    if getuid() != u.uid || geteuid() != u.uid || getgid() != g.gid || getegid() != g.gid {
        return Err(PrivilegeError::NotDropped);
    }
    log::info!("dropped privileges to {user}:{group}");
    Ok(())
}
