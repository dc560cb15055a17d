//! `keylet doctor`: what stands between this host and a passing attestation,
//! one line per check with OK/WARN/FAIL and the fix.
//!
//! The doctor reads the same configuration as `keylet run` and changes
//! nothing: it registers nothing, generates no key, flushes no TPM object but
//! the ones it loaded itself, and binds the listen port only to see that it
//! is free. Exit codes: 0 nothing failed (warnings allowed), 1 a check
//! failed, 2 the configuration or the command line is unusable.

mod certs;
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

use report::{EXIT_CONFIG, EXIT_FAIL, Report, fail, warn};

use crate::config::{self, AttestationMode, Environment, IdentitySettings, Loaded};
use crate::console;

/// The doctor's command line: `--json`, one JSON document instead of text;
/// `--ek-ca DIR|FILE`, the CA store the EK certificate must chain to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Options {
    pub(crate) json: bool,
    pub(crate) ek_ca: Option<PathBuf>,
}

impl Options {
    /// Parses the arguments after `doctor`; an error ends with the usage line.
    pub(crate) fn parse(args: &[String]) -> Result<Self, String> {
        let usage = |m: &str| format!("{m}; usage: keylet doctor [--json] [--ek-ca DIR|FILE]");
        let mut out = Self::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let path = match a.as_str() {
                "--json" => {
                    out.json = true;
                    continue;
                }
                "--ek-ca" => it.next().ok_or_else(|| usage("--ek-ca needs a path"))?,
                other => other
                    .strip_prefix("--ek-ca=")
                    .ok_or_else(|| usage(&format!("unknown argument {other:?}")))?,
            };
            out.ek_ca = Some(PathBuf::from(path));
        }
        Ok(out)
    }
}

/// Loads the configuration as `keylet run` would; the `config` line says what
/// was read, and the configuration is returned when it is usable.
fn load_config(report: &mut Report, env: &Environment, root: &Path) -> Option<Loaded> {
    let loaded = config::load_from(env, root)
        .map_err(|e| report.add("config", Err(fail(e.to_string(), e.fix))))
        .ok()?;
    let (files, vars) = (&loaded.raw.files, &loaded.raw.env_vars);
    let files = if files.is_empty() {
        "no config file (built-in defaults)".to_string()
    } else {
        let files: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
        format!("files {}", files.join(", "))
    };
    let vars = if vars.is_empty() {
        "no KEYLIME_AGENT_* variables".to_string()
    } else {
        format!("environment {}", vars.join(", "))
    };
    report.add("config", Ok(format!("parsed {files}; {vars}")));
    for w in &loaded.warnings {
        let fix = "remove or rename the option (keylet ignores it)";
        report.add("config.option", Err(warn(w.clone(), fix)));
    }
    Some(loaded)
}

/// Runs every check with the configuration of `env` (files under `root`).
pub(crate) async fn diagnose(options: &Options, env: &Environment, root: &Path) -> Report {
    let mut report = Report::default();
    let Some(loaded) = load_config(&mut report, env, root) else {
        return report;
    };
    let c = &loaded.config;
    let (state_outcome, state) = files::agent_state(c);
    let state = state.as_ref();
    // The EK CA store: `--ek-ca`, else Keylime's `tpm_cert_store` in `keylime_dir` if present.
    let store = options.ek_ca.clone().or_else(|| {
        let default = c.keylime_dir.join("tpm_cert_store");
        default.is_dir().then_some(default)
    });
    let push = c.push.mode == AttestationMode::Push;
    // In push mode no port tells whether keylet runs: the TPM checks run.
    let (listen, agent_running) = if push {
        let why = "push mode: keylet opens no port for the verifier (metrics and the identity \
                   listener only when configured)";
        (Ok(why.into()), false)
    } else {
        network::listen(c).await
    };
    let ek_public = tpm::check(&mut report, c, state, store.as_deref(), agent_running);
    if let Some(ak_da) = lockout::ak(c, state) {
        report.add("tpm.ak_da", ak_da);
    }
    let uuid = identity::check(&mut report, c, ek_public.as_deref(), state);
    report.add("identity.uuid", uuid);
    report.add("keys.ak", state_outcome);
    // The payload key serves pull mode (and identity quotes for SPIRE).
    if !push || c.identity != IdentitySettings::default() {
        report.add("keys.nk", files::payload_key(c, state.is_some()));
    }
    if !push {
        report.add("keys.mtls", files::mtls(c));
    }
    let mtls = !push && c.enable_agent_mtls;
    // Per certificate option in use: its files, the dates check (named
    // `certs.<option>`) and the chain check.
    let cert_options: [(bool, &[PathBuf], &str, _); 4] = [
        (
            push,
            std::slice::from_ref(&c.push.verifier_tls_ca_cert),
            "certs.verifier_tls_ca_cert",
            Some("certs.verifier_tls_ca_chain"),
        ),
        (
            mtls && c.server_cert.exists(),
            std::slice::from_ref(&c.server_cert),
            "certs.server_cert",
            None,
        ),
        (
            mtls,
            &c.trusted_client_ca,
            "certs.trusted_client_ca",
            Some("certs.trusted_client_ca_chain"),
        ),
        (
            c.registrar_tls_enabled,
            std::slice::from_ref(&c.registrar_tls_ca_cert),
            "certs.registrar_tls_ca_cert",
            Some("certs.registrar_tls_ca_chain"),
        ),
    ];
    let now = SystemTime::now();
    for (_, files, dates, chain) in cert_options.into_iter().filter(|o| o.0) {
        let option = dates.trim_start_matches("certs.");
        for path in files {
            report.add(dates, certs::expiry(option, path, now));
        }
        if let Some(chain) = chain {
            report.add(chain, certs::bundle(option, files));
        }
    }
    report.add("registrar", network::registrar(c).await);
    #[cfg(feature = "push")]
    if push {
        verifier::check(&mut report, c, state).await;
    }
    report.add("listen", listen);
    logs::check(&mut report, c);
    report.add("confine", confine::check(c));
    report.add("confine.seccomp", confine::seccomp(c));
    report
}

/// `keylet doctor [--json] [--ek-ca DIR|FILE]`: prints the report; returns the exit code.
#[must_use]
pub(crate) fn main(args: &[String]) -> u8 {
    let Ok(options) =
        Options::parse(args).inspect_err(|e| console::err_line(&format!("keylet doctor: {e}")))
    else {
        return EXIT_CONFIG;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let report = match runtime {
        Ok(r) => r.block_on(diagnose(&options, &Environment::process(), Path::new("/"))),
        Err(e) => {
            let e = format!("keylet doctor: cannot start the async runtime: {e}");
            console::err_line(&e);
            return EXIT_FAIL;
        }
    };
    if options.json {
        console::out_line(&report.to_json().to_string());
    } else {
        console::out(&report.to_text());
    }
    report.exit_code()
}
