//! `keylet doctor`: what stands between this host and a passing attestation,
//! one line per check with OK/WARN/FAIL and the fix.
//!
//! The doctor reads the same configuration as `keylet run` and changes
//! nothing: it registers nothing, generates no key, flushes no TPM object but
//! the ones it loaded itself, and binds the listen port only to see that it
//! is free. Exit codes: 0 nothing failed (warnings allowed), 1 a check
//! failed, 2 the configuration or the command line is unusable.

mod certs;
mod config;
mod confine;
#[cfg(feature = "iak")]
mod device_id; // IAK and IDevID
mod ek_chain;
mod files;
mod identity;
mod lockout;
mod logs;
mod network;
mod report;
mod tpm;
#[cfg(feature = "push")]
mod verifier; // push mode

use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub(crate) use report::{Check, EXIT_CONFIG, EXIT_FAIL, Report};

use crate::config::{AttestationMode, Environment, Loaded};
use crate::console;

/// The doctor's command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Options {
    /// `--json`: one JSON document instead of text.
    pub(crate) json: bool,
    /// `--ek-ca DIR|FILE`: the CA store the EK certificate must chain to.
    pub(crate) ek_ca: Option<PathBuf>,
}

/// Why the doctor's command line was not understood.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum DoctorError {
    /// An unknown or incomplete argument.
    Usage(String),
}

impl std::fmt::Display for DoctorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Usage(m) => write!(f, "{m}; usage: keylet doctor [--json] [--ek-ca DIR|FILE]"),
        }
    }
}

impl std::error::Error for DoctorError {}

impl Options {
    /// Parses the arguments after `doctor`.
    ///
    /// # Errors
    ///
    /// [`DoctorError::Usage`] for an unknown argument or `--ek-ca` without a path.
    pub(crate) fn parse(args: &[String]) -> Result<Self, DoctorError> {
        let mut out = Self::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--json" => out.json = true,
                "--ek-ca" => {
                    let path = it
                        .next()
                        .ok_or_else(|| DoctorError::Usage("--ek-ca needs a path".into()))?;
                    out.ek_ca = Some(PathBuf::from(path));
                }
                other => {
                    if let Some(path) = other.strip_prefix("--ek-ca=") {
                        out.ek_ca = Some(PathBuf::from(path));
                    } else {
                        return Err(DoctorError::Usage(format!("unknown argument {other:?}")));
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The EK CA store: `--ek-ca`, else Keylime's `tpm_cert_store` in `keylime_dir` if present.
fn ek_store(options: &Options, loaded: &Loaded) -> Option<PathBuf> {
    options.ek_ca.clone().or_else(|| {
        let default = loaded.config.keylime_dir.join("tpm_cert_store");
        default.is_dir().then_some(default)
    })
}

/// Runs every check with the configuration of `env` (files under `root`).
pub(crate) async fn diagnose(options: &Options, env: &Environment, root: &Path) -> Report {
    let mut report = Report::default();
    let (checks, loaded) = config::check(env, root);
    report.checks.extend(checks);
    let Some(loaded) = loaded else {
        report.config_unusable = true;
        return report;
    };
    let c = &loaded.config;
    let (state_check, state) = files::agent_state(c);
    let store = ek_store(options, &loaded);
    let push = c.push.mode == AttestationMode::Push;
    // In push mode no port tells whether keylet runs: the TPM checks run.
    let (listen, agent_running) = if push {
        (
            Check::ok(
                "listen",
                "push mode: keylet opens no port for the verifier (metrics and the identity \
                 listener only when configured)",
            ),
            false,
        )
    } else {
        network::listen(c).await
    };
    let (tpm_checks, facts) = tpm::check(c, state.as_ref(), store.as_deref(), agent_running);
    report.checks.extend(tpm_checks);
    report.checks.extend(lockout::ak(c, state.as_ref()));
    report
        .checks
        .extend(identity::check(c, &facts, state.as_ref()));
    report.push(state_check);
    // The payload key serves pull mode (and identity quotes for SPIRE).
    if !push || c.identity != crate::config::IdentitySettings::default() {
        report.push(files::payload_key(c, state.is_some()));
    }
    if !push {
        report.push(files::mtls(c));
    }
    let now = SystemTime::now();
    if push {
        let ca = std::slice::from_ref(&c.push.verifier_tls_ca_cert);
        report.push(certs::expiry(
            "certs.verifier_tls_ca_cert",
            "verifier_tls_ca_cert",
            &c.push.verifier_tls_ca_cert,
            now,
        ));
        report.push(certs::bundle(
            "certs.verifier_tls_ca_chain",
            "verifier_tls_ca_cert",
            ca,
        ));
    }
    if !push && c.enable_agent_mtls && c.server_cert.exists() {
        report.push(certs::expiry(
            "certs.server_cert",
            "server_cert",
            &c.server_cert,
            now,
        ));
    }
    if !push && c.enable_agent_mtls {
        for path in &c.trusted_client_ca {
            report.push(certs::expiry(
                "certs.trusted_client_ca",
                "trusted_client_ca",
                path,
                now,
            ));
        }
        report.push(certs::bundle(
            "certs.trusted_client_ca_chain",
            "trusted_client_ca",
            &c.trusted_client_ca,
        ));
    }
    if c.registrar_tls_enabled {
        let ca = std::slice::from_ref(&c.registrar_tls_ca_cert);
        report.push(certs::expiry(
            "certs.registrar_tls_ca_cert",
            "registrar_tls_ca_cert",
            &c.registrar_tls_ca_cert,
            now,
        ));
        report.push(certs::bundle(
            "certs.registrar_tls_ca_chain",
            "registrar_tls_ca_cert",
            ca,
        ));
    }
    report.push(network::registrar(c).await);
    #[cfg(feature = "push")]
    if push {
        report
            .checks
            .extend(verifier::check(c, state.as_ref()).await);
    }
    report.push(listen);
    report.checks.extend(logs::check(c));
    report.push(confine::check(c));
    report.push(confine::seccomp(c));
    report
}

/// `keylet doctor [--json] [--ek-ca DIR|FILE]`: prints the report; returns the exit code.
#[must_use]
pub(crate) fn main(args: &[String]) -> u8 {
    let options = match Options::parse(args) {
        Ok(o) => o,
        Err(e) => {
            console::err_line(&format!("keylet doctor: {e}"));
            return EXIT_CONFIG;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            console::err_line(&format!(
                "keylet doctor: cannot start the async runtime: {e}"
            ));
            return EXIT_FAIL;
        }
    };
    let report = runtime.block_on(diagnose(
        &options,
        &crate::config::Environment::process(),
        Path::new("/"),
    ));
    if options.json {
        console::out_line(&report.to_json().to_string());
    } else {
        console::out(&report.to_text());
    }
    report.exit_code()
}
