//! Which TPM to talk to: the `tpm_device` option and tpm2-tss `TCTI` strings
//! (`device:`, `swtpm:`, `mssim:`).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::net::HostPort;

/// swtpm's default data port (tpm2-tss uses the same default).
pub(crate) const SWTPM_DEFAULT_PORT: u16 = 2321;

/// A TPM location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TpmDevice {
    /// A character device, e.g. `/dev/tpmrm0` or `/dev/tpm0`.
    Path(PathBuf),
    /// swtpm's TCP data port.
    Tcp { host: String, port: u16 },
    /// An already-open descriptor (inherited from a privileged parent).
    Fd(i32),
    /// The Microsoft/IBM TPM simulator: its TPM port (the platform port is
    /// the next one).
    Mssim { host: String, port: u16 },
}

/// A `tpm_device` or `TCTI` value keylet cannot use, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid TPM device {value:?}: {reason}; use /dev/tpmrm0, /dev/tpm0, tcp://HOST:PORT, fd://N, \
     device:/dev/tpmrm0, swtpm:host=HOST,port=PORT or mssim:host=HOST,port=PORT"
)]
pub struct DeviceError {
    pub(crate) value: String,
    pub(crate) reason: &'static str,
}

impl fmt::Display for TpmDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Path(p) => write!(f, "{}", p.display()),
            Self::Tcp { host, port } => write!(f, "tcp://{}", HostPort(host, *port)),
            Self::Fd(n) => write!(f, "fd://{n}"),
            Self::Mssim { host, port } => write!(f, "mssim:host={host},port={port}"),
        }
    }
}

fn err(value: &str, reason: &'static str) -> DeviceError {
    DeviceError {
        value: value.to_owned(),
        reason,
    }
}

fn parse_port(value: &str, port: &str) -> Result<u16, DeviceError> {
    match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(err(value, "the port is not a number in 1..=65535")),
    }
}

/// `HOST:PORT` or `[V6]:PORT`.
fn parse_host_port(value: &str, s: &str) -> Result<TpmDevice, DeviceError> {
    let (host, port) = match s.strip_prefix('[').map(|rest| rest.split_once(']')) {
        Some(None) => return Err(err(value, "an IPv6 address needs a closing ]")),
        Some(Some((host, rest))) => (host, rest.strip_prefix(':')),
        None => s.rsplit_once(':').map_or((s, None), |(h, p)| (h, Some(p))),
    };
    let port = port.ok_or_else(|| err(value, "missing :PORT"))?;
    if host.is_empty() {
        return Err(err(value, "missing host"));
    }
    Ok(TpmDevice::Tcp {
        host: host.to_owned(),
        port: parse_port(value, port)?,
    })
}

/// tpm2-tss `swtpm:` and `mssim:` options: `host=H,port=P`, `port=P`, or
/// nothing; the host and port, with tpm2-tss's defaults.
fn parse_host_port_opts(
    value: &str,
    opts: &str,
    default_host: &str,
    reason: &'static str,
) -> Result<(String, u16), DeviceError> {
    let mut host = default_host.to_owned();
    let mut port = SWTPM_DEFAULT_PORT;
    for opt in opts.split(',').filter(|o| !o.is_empty()) {
        match opt.split_once('=') {
            Some(("host", h)) if !h.is_empty() => h.clone_into(&mut host),
            Some(("port", p)) => port = parse_port(value, p)?,
            _ => return Err(err(value, reason)),
        }
    }
    Ok((host, port))
}

impl FromStr for TpmDevice {
    type Err = DeviceError;

    fn from_str(value: &str) -> Result<Self, DeviceError> {
        let s = value.trim();
        if s.starts_with('/') {
            return Ok(Self::Path(PathBuf::from(s)));
        }
        // `swtpm` and `mssim` alone take tpm2-tss's defaults
        let (form, rest) = s.split_once(':').unwrap_or((s, ""));
        match (form, rest.strip_prefix("//")) {
            ("tcp", Some(rest)) => parse_host_port(value, rest),
            ("fd", Some(rest)) => match rest.parse::<i32>() {
                Ok(n) if n >= 0 => Ok(Self::Fd(n)),
                _ => Err(err(value, "fd:// needs a non-negative descriptor number")),
            },
            ("device", _) if rest.is_empty() => Ok(Self::Path(PathBuf::from("/dev/tpm0"))),
            ("device", _) if rest.starts_with('/') => Ok(Self::Path(PathBuf::from(rest))),
            ("device", _) => Err(err(value, "device: needs an absolute path")),
            ("swtpm", _) => {
                let only = "swtpm: takes only host=HOST and port=PORT";
                let (host, port) = parse_host_port_opts(value, rest, "127.0.0.1", only)?;
                Ok(Self::Tcp { host, port })
            }
            ("mssim", _) => {
                let only = "mssim: takes only host=HOST and port=PORT";
                match parse_host_port_opts(value, rest, "localhost", only)? {
                    (_, u16::MAX) => Err(err(
                        value,
                        "mssim: needs the port after PORT for the platform",
                    )),
                    (host, port) => Ok(Self::Mssim { host, port }),
                }
            }
            _ => Err(err(value, "unknown form")),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn config_and_tcti_forms() {
        let tcp = |host: &str, port| TpmDevice::Tcp {
            host: host.into(),
            port,
        };
        let mssim = |host: &str, port| TpmDevice::Mssim {
            host: host.into(),
            port,
        };
        for (s, want) in [
            // the tpm_device option's forms
            ("/dev/tpmrm0", TpmDevice::Path("/dev/tpmrm0".into())),
            ("tcp://127.0.0.1:2321", tcp("127.0.0.1", 2321)),
            ("tcp://[::1]:2321", tcp("::1", 2321)),
            ("fd://7", TpmDevice::Fd(7)),
            // tpm2-tss TCTI strings
            ("device:/dev/tpmrm0", TpmDevice::Path("/dev/tpmrm0".into())),
            ("swtpm:host=localhost,port=2331", tcp("localhost", 2331)),
            ("mssim:host=127.0.0.1,port=2331", mssim("127.0.0.1", 2331)),
            ("mssim", mssim("localhost", 2321)),
            ("swtpm:port=2341", tcp("127.0.0.1", 2341)),
        ] {
            assert_eq!(s.parse::<TpmDevice>().unwrap(), want, "{s}");
        }
    }

    #[test]
    fn bad_values_are_rejected_with_a_reason() {
        for bad in [
            "tcp://host",
            "tcp://:5",
            "tcp://h:0",
            "tcp://h:99999",
            "fd://-1",
            "fd://x",
            "swtpm:port=abc",
            "swtpm:bogus=1",
            "mssim:port=65535",
            "mssim:path=/x",
            "tpm0",
            "",
        ] {
            let e = bad.parse::<TpmDevice>().unwrap_err();
            assert!(!e.reason.is_empty(), "{bad}");
            assert!(e.to_string().contains("tcp://HOST:PORT"));
        }
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "/dev/tpm0",
            "tcp://127.0.0.1:2321",
            "tcp://[::1]:9",
            "fd://3",
            "mssim:host=localhost,port=2321",
        ] {
            assert_eq!(s.parse::<TpmDevice>().unwrap().to_string(), s);
        }
    }
}
