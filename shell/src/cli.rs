//! The command line: `keylet [run]`, `keylet identity`, `--help`, `--version`.

use std::process::ExitCode;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::config;
use crate::console;
use crate::state::AgentState;

const HELP: &str = "\
keylet - a small TPM 2.0 attestation agent for Keylime

Usage: keylet [COMMAND]

Commands:
  run        register with the registrar and serve the Keylime agent API (default)
  identity   print the persisted agent id and keys as JSON (no TPM access)
  rotate-cert  make a new mTLS certificate, register it and print the steps
             for the verifier (opens the TPM: with swtpm over TCP stop keylet first)
  doctor     check config, TPM, EK, id, keys, certificates, registrar, port, logs;
             one OK/WARN/FAIL line each with the fix; changes nothing
             [--json] [--ek-ca DIR|FILE]; exit 0 no FAIL, 1 a FAIL, 2 bad config
  help       print this help

Options:
  -h, --help     print this help
  -V, --version  print the version

Configuration: the [agent] section of /etc/keylime/agent.conf (and
/usr/etc/keylime, conf.d snippets), or only the file KEYLIME_AGENT_CONFIG
names; KEYLIME_AGENT_<OPTION> environment variables override single options.
The TPM is option tpm_device (/dev/tpmrm0, tcp://HOST:PORT, fd://N) or TCTI.
Logs go to stderr; set RUST_LOG (error, warn, info, debug) for the level.

Exit codes: 0 stopped cleanly, 1 runtime failure, 2 configuration error.
";

/// Runs the command line; returns the process exit code.
#[must_use]
pub fn main(args: Vec<String>) -> ExitCode {
    match args.first().map_or("run", String::as_str) {
        "-h" | "--help" | "help" => {
            console::out(HELP);
            ExitCode::SUCCESS
        }
        "-V" | "--version" => {
            console::out_line(&format!("keylet {}", env!("CARGO_PKG_VERSION")));
            ExitCode::SUCCESS
        }
        "run" => start(run),
        "identity" => identity(),
        "rotate-cert" => start(rotate_cert),
        #[cfg(feature = "doctor")]
        "doctor" => ExitCode::from(crate::doctor::main(args.get(1..).unwrap_or(&[]))),
        #[cfg(not(feature = "doctor"))]
        "doctor" => fail(
            2,
            "keylet: this keylet was built without the doctor feature; use a default build \
             (cargo build --release -p keylet) for keylet doctor",
        ),
        other => fail(
            2,
            &format!("keylet: unknown command {other:?}; see keylet --help"),
        ),
    }
}

fn fail(code: u8, message: &str) -> ExitCode {
    console::err_line(message);
    ExitCode::from(code)
}

/// Logs `e` as the error that ends keylet with `code`.
fn logged(code: u8, e: impl std::fmt::Display) -> ExitCode {
    log::error!("{e}");
    ExitCode::from(code)
}

/// How long the runtime waits for its blocking thread (log reads) when keylet
/// exits. The TPM worker and the operator's thread are not waited for: a TPM
/// command that hangs keeps its job busy until the transport times out, and
/// must not keep keylet from exiting (closing the device flushes the rest).
pub const RUNTIME_STOP: std::time::Duration = std::time::Duration::from_millis(100);

/// keylet's runtime: one async thread and one blocking thread for log reads (and name lookups), and
/// at start-up for opening the TPM and making the keys. Once serving, TPM work runs on the TPM
/// worker, operator scripts on their own executor ([`crate::executor`]).
#[must_use]
pub fn runtime() -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(1)
        .build()
        .map_err(|e| log::error!("cannot start the async runtime: {e}"))
        .ok()
}

/// Logging, the configuration and the runtime that `run` and `rotate-cert` share, then `cmd` with
/// them; 2 if the configuration fails, 1 if the runtime does.
fn start(cmd: fn(config::Loaded, tokio::runtime::Runtime) -> ExitCode) -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_target(false)
        .init();
    match config::load() {
        Ok(loaded) => runtime().map_or(ExitCode::from(1), |runtime| cmd(loaded, runtime)),
        Err(e) => logged(2, e),
    }
}

fn run(loaded: config::Loaded, runtime: tokio::runtime::Runtime) -> ExitCode {
    let result = runtime.block_on(crate::agent::run(loaded));
    runtime.shutdown_timeout(RUNTIME_STOP);
    match result {
        Ok(()) => {
            log::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => logged(e.exit_code(), e),
    }
}

fn identity() -> ExitCode {
    let loaded = match config::load() {
        Ok(l) => l,
        Err(e) => return fail(2, &format!("keylet: {e}")),
    };
    let path = &loaded.config.agent_data_path;
    let shown = path.display();
    match AgentState::load(path) {
        Ok(Some(state)) => {
            let out = serde_json::json!({
                "uuid": state.agent_id,
                "aik_tpm": STANDARD.encode(&state.ak_public),
                "ek_tpm": STANDARD.encode(&state.ek_public),
            });
            console::out_line(&out.to_string());
            ExitCode::SUCCESS
        }
        Ok(None) => fail(
            1,
            &format!("keylet: no agent state at {shown} yet; run keylet once first"),
        ),
        Err(e) => fail(1, &format!("keylet: {e}")),
    }
}

/// `keylet rotate-cert`: see [`crate::rotate`].
fn rotate_cert(loaded: config::Loaded, runtime: tokio::runtime::Runtime) -> ExitCode {
    match runtime.block_on(crate::rotate::rotate(&loaded.config)) {
        Ok(next_steps) => {
            console::out(&next_steps);
            ExitCode::SUCCESS
        }
        Err(e) => logged(1, format_args!("rotate-cert: {e}")),
    }
}
