//! The options of keylet's plain-HTTP listeners. The local identity listener
//! for SPIRE: `identity_listen` (loopback TCP only), `identity_socket` (a Unix
//! socket) and the peers the socket accepts, `identity_allow_uids` /
//! `identity_allow_gids`. Metrics: `metrics_listen` and `metrics_allow_remote`.

use std::net::SocketAddr;
use std::path::PathBuf;

use nix::unistd::{Group, User};

use super::ConfigError;
use super::value::Values;

/// Where the identity listener serves, and whom the Unix socket admits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentitySettings {
    /// Loopback TCP address (`identity_listen`), plain HTTP.
    pub listen: Option<SocketAddr>,
    /// Unix socket path (`identity_socket`), plain HTTP, mode 0660.
    pub socket: Option<PathBuf>,
    /// Peer uids admitted on the socket (besides keylet's own uid).
    pub allow_uids: Vec<u32>,
    /// Peer primary gids admitted on the socket.
    pub allow_gids: Vec<u32>,
}

pub(super) fn parse_identity(v: &Values<'_>) -> Result<IdentitySettings, ConfigError> {
    let form = "a loopback address and port such as 127.0.0.1:9003";
    let listen = v.parse("identity_listen", "", form, |s| match s {
        "" => Some(None),
        s => s.trim_start_matches("http://").parse().ok().map(Some),
    })?;
    if listen.is_some_and(|a: SocketAddr| !a.ip().is_loopback()) {
        return Err(v.error(
            "identity_listen",
            "a loopback address (127.0.0.1 or ::1) and port: it serves identity quotes over plain \
             HTTP without client authentication, so it must not be reachable from the network \
             (use identity_socket, or the mTLS port, for anything else)",
        ));
    }
    let form = "an absolute path such as /run/keylime-agent/identity.sock";
    let socket = v.parse("identity_socket", "", form, |s| match s {
        "" => Some(None),
        s => s.starts_with('/').then(|| Some(PathBuf::from(s))),
    })?;
    Ok(IdentitySettings {
        listen,
        socket,
        allow_uids: ids(v, "identity_allow_uids", |n| {
            User::from_name(n).ok().flatten().map(|u| u.uid.as_raw())
        })?,
        allow_gids: ids(v, "identity_allow_gids", |n| {
            Group::from_name(n).ok().flatten().map(|g| g.gid.as_raw())
        })?,
    })
}

/// A comma-separated list of numeric ids or names resolved with `lookup`.
fn ids(
    v: &Values<'_>,
    option: &str,
    lookup: impl Fn(&str) -> Option<u32>,
) -> Result<Vec<u32>, ConfigError> {
    let s = v.string(option, "")?;
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let id = item.parse().ok().or_else(|| lookup(item)).ok_or_else(|| {
            let form = format!(
                "a comma-separated list of numeric ids or existing names ({item:?} is not known \
                 on this host)"
            );
            v.error(option, &form)
        })?;
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// `metrics_listen`: empty (the default) turns metrics off; otherwise `IP:PORT` (`[IPv6]:PORT`,
/// `localhost:PORT`). A non-loopback address is refused unless `metrics_allow_remote` is true: the
/// metrics are plain HTTP without authentication.
pub(super) fn parse_metrics_listen(v: &Values<'_>) -> Result<Option<SocketAddr>, ConfigError> {
    let form = "IP:PORT such as 127.0.0.1:9102 ([::1]:9102 for IPv6), or empty to turn metrics off";
    let addr = v.parse("metrics_listen", "", form, |s| {
        match s.strip_prefix("localhost:") {
            _ if s.is_empty() => Some(None),
            Some(port) => Some(Some(SocketAddr::from(([127, 0, 0, 1], port.parse().ok()?)))),
            None => s.parse().ok().map(Some),
        }
    })?;
    v.known(&["metrics_allow_remote"]); // read only for a remote address
    if addr.is_some_and(|a| !a.ip().is_loopback()) && !v.boolean("metrics_allow_remote", false)? {
        return Err(v.error(
            "metrics_listen",
            "a loopback address such as 127.0.0.1:9102: metrics are plain HTTP without \
             authentication; to serve them on another address anyway, also set \
             metrics_allow_remote = true (and firewall the port)",
        ));
    }
    Ok(addr)
}
