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
        allow_uids: ids(v, "identity_allow_uids", |name| {
            User::from_name(name).ok().flatten().map(|u| u.uid.as_raw())
        })?,
        allow_gids: ids(v, "identity_allow_gids", |name| {
            Group::from_name(name)
                .ok()
                .flatten()
                .map(|g| g.gid.as_raw())
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

/// `metrics_listen`: empty (the default) turns metrics off; otherwise
/// `IP:PORT` (`[IPv6]:PORT`, `localhost:PORT`). A non-loopback address is
/// refused unless `metrics_allow_remote` is true: the metrics are plain HTTP
/// without authentication.
pub(super) fn parse_metrics_listen(v: &Values<'_>) -> Result<Option<SocketAddr>, ConfigError> {
    let form = "IP:PORT such as 127.0.0.1:9102 ([::1]:9102 for IPv6), or empty to turn metrics off";
    let addr = v.parse("metrics_listen", "", form, |s| {
        match s.strip_prefix("localhost:") {
            _ if s.is_empty() => Some(None),
            Some(port) => {
                let port = port.parse().ok()?;
                Some(Some(SocketAddr::from(([127, 0, 0, 1], port))))
            }
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

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::IdentitySettings;
    use crate::config::tests::{load, load_vars, refused, refused_vars};

    fn settings(agent_section: &str) -> IdentitySettings {
        load(agent_section, &[]).unwrap().config.identity
    }

    #[test]
    #[cfg(feature = "identity")] // the option is refused without it
    fn loopback_listen_socket_and_allow_lists() {
        let s = settings(
            "identity_listen = \"127.0.0.1:9003\"\nidentity_socket = \"/run/k/identity.sock\"\n\
             identity_allow_uids = \"1000, root, 1000\"\nidentity_allow_gids = 0",
        );
        assert_eq!(s.listen, Some("127.0.0.1:9003".parse().unwrap()));
        assert_eq!(s.socket, Some("/run/k/identity.sock".into()));
        assert_eq!((s.allow_uids, s.allow_gids), (vec![1000, 0], vec![0]));
        let s = settings("identity_listen = \"[::1]:9003\"");
        assert_eq!(s.listen, Some("[::1]:9003".parse().unwrap()));
    }

    #[test]
    fn non_loopback_listen_unknown_names_and_relative_sockets_are_refused() {
        for addr in ["0.0.0.0:9003", "192.0.2.1:9003", "[::]:9003"] {
            let line = format!("identity_listen = \"{addr}\"");
            refused(&line, &["identity_listen", "loopback"]);
        }
        refused("identity_listen = \"localhost\"", &["identity_listen"]);
        let needles = ["identity_allow_uids", "no-such-user-keylet"];
        refused("identity_allow_uids = \"no-such-user-keylet\"", &needles);
        refused("identity_socket = \"identity.sock\"", &["identity_socket"]);
    }

    const LISTEN: &str = "KEYLIME_AGENT_METRICS_LISTEN";
    const REMOTE: &str = "KEYLIME_AGENT_METRICS_ALLOW_REMOTE";

    fn listen(vars: &[(&str, &str)]) -> Option<SocketAddr> {
        load_vars(vars).unwrap().config.metrics_listen
    }

    #[test]
    #[cfg(feature = "metrics")] // the option is refused without it
    fn loopback_addresses_or_a_remote_one_with_the_explicit_opt_in() {
        for (vars, addr) in [
            (&[(LISTEN, "127.0.0.1:9102")][..], "127.0.0.1:9102"),
            (&[(LISTEN, "[::1]:9102")], "[::1]:9102"),
            (&[(LISTEN, "localhost:9102")], "127.0.0.1:9102"),
            (
                &[(LISTEN, "0.0.0.0:9102"), (REMOTE, "true")],
                "0.0.0.0:9102",
            ),
        ] {
            assert_eq!(listen(vars), Some(addr.parse().unwrap()), "{vars:?}");
        }
        let needles = ["metrics_listen", "metrics_allow_remote = true"];
        refused_vars(&[(LISTEN, "0.0.0.0:9102")], &needles);
        refused_vars(
            &[(LISTEN, "192.0.2.7:9102"), (REMOTE, "false")],
            &["loopback"],
        );
    }

    #[test]
    fn empty_is_off_and_malformed_addresses_name_the_option_and_the_form() {
        assert_eq!(listen(&[(LISTEN, "")]), None);
        for bad in ["9102", "127.0.0.1", "localhost:http", "host.example:9102"] {
            refused_vars(&[(LISTEN, bad)], &["metrics_listen", "IP:PORT"]);
        }
    }
}
