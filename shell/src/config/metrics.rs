//! Options of keylet's metrics listener: `metrics_listen` and
//! `metrics_allow_remote`.

use std::net::{IpAddr, SocketAddr};

use super::ConfigError;
use super::value::Values;

/// `metrics_listen`: empty (the default) turns metrics off; otherwise
/// `IP:PORT` (`[IPv6]:PORT`, `localhost:PORT`). A non-loopback address is
/// refused unless `metrics_allow_remote` is true: the metrics are plain HTTP
/// without authentication.
///
/// # Errors
///
/// [`ConfigError::Invalid`] naming the option.
pub(super) fn parse_metrics_listen(v: &Values<'_>) -> Result<Option<SocketAddr>, ConfigError> {
    let form = "IP:PORT such as 127.0.0.1:9102 ([::1]:9102 for IPv6), or empty to turn metrics off";
    let addr = v.parse("metrics_listen", "", form, |s| {
        match s.strip_prefix("localhost:") {
            _ if s.is_empty() => Some(None),
            Some(port) => port
                .parse()
                .ok()
                .map(|p| Some(SocketAddr::new(IpAddr::from([127, 0, 0, 1]), p))),
            None => s.parse().ok().map(Some),
        }
    })?;
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

    use crate::config::tests::{load_vars, refused_vars};

    const LISTEN: &str = "KEYLIME_AGENT_METRICS_LISTEN";
    const REMOTE: &str = "KEYLIME_AGENT_METRICS_ALLOW_REMOTE";

    fn listen(vars: &[(&str, &str)]) -> Option<SocketAddr> {
        load_vars(vars).unwrap().config.metrics_listen
    }

    #[test]
    fn off_by_default_and_when_empty() {
        assert_eq!(listen(&[]), None);
        assert_eq!(listen(&[(LISTEN, "")]), None);
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
    fn malformed_addresses_name_the_option_and_the_form() {
        for bad in ["9102", "127.0.0.1", "localhost:http", "host.example:9102"] {
            refused_vars(&[(LISTEN, bad)], &["metrics_listen", "IP:PORT"]);
        }
    }
}
