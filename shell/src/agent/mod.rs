//! The agent's lifecycle: open the TPM, establish the identity, register and
//! activate, serve the pull API until told to stop, flush the TPM objects.

pub(crate) mod clock;
#[cfg(feature = "iak")]
pub(crate) mod device_id;
#[cfg(feature = "iak")]
pub(crate) mod device_key;
mod identity;
mod keys;
mod pull;
#[cfg(feature = "push")]
mod push;
mod register;
mod serve;
mod service;
mod startup;
mod tpm_box;

use std::path::PathBuf;

use keylet_core::agent::AgentError;

pub use identity::{Identity, IdentityError, resolve as resolve_identity};
pub use serve::{FLUSH_WAIT, serve, server_settings};
pub use service::{TpmAttestation, attestation};
pub(crate) use startup::run;
pub use tpm_box::{TpmBox, choose_device};
// start-up steps, also for keylet rotate-cert and the integration tests
pub use keys::{TpmObjects, attestation_key, ek_origin, endorsement};
pub(crate) use register::register;

use crate::config::ConfigError;
use crate::registrar::RegistrarError;
use crate::server::TlsError;
use crate::store::StoreError;
use crate::tpm::{DeviceError, HintSuffix, TransportError};

/// Why the agent could not start or had to stop.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    Config(ConfigError),
    /// The `tpm_device` / TCTI value does not parse.
    Device(DeviceError),
    Open(TransportError),
    /// A TPM step failed: what keylet was doing, and the error.
    Tpm {
        step: &'static str,
        source: AgentError<TransportError>,
    },
    Identity(IdentityError),
    State(StoreError),
    /// The agent state at `path` belongs to other settings: what differs.
    StateMismatch {
        path: PathBuf,
        detail: String,
    },
    /// A key or certificate cannot be loaded or made.
    Keys(StoreError),
    Registrar(RegistrarError),
    /// The IAK or IDevID cannot be used (the message names the option to
    /// fix), or the registrar refused them.
    DeviceId(String),
    Credential(String),
    Tls(TlsError),
    /// A filesystem step failed: what keylet was doing, and the error.
    Io {
        what: &'static str,
        detail: String,
    },
}

impl StartError {
    /// [`StartError::Tpm`] of the `step` keylet was taking.
    pub(crate) fn tpm(step: &'static str) -> impl FnOnce(AgentError<TransportError>) -> Self {
        move |source| Self::Tpm { step, source }
    }

    /// [`StartError::Io`] of `what` keylet was doing.
    pub(crate) fn io<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> Self {
        move |e| Self::Io {
            what,
            detail: e.to_string(),
        }
    }

    /// The process exit code: 2 for configuration mistakes, 1 otherwise.
    #[must_use]
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            Self::Config(_)
            | Self::Device(_)
            | Self::Identity(IdentityError::Configured(_) | IdentityError::Host(_)) => 2,
            _ => 1,
        }
    }
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Config(e) => e.fmt(f),
            Self::Device(e) => write!(f, "option tpm_device / TCTI: {e}"),
            Self::Open(e) => write!(f, "cannot open the TPM: {e}"),
            Self::Tpm { step, source } => {
                write!(f, "cannot {step}: {source}{}", HintSuffix(source))
            }
            Self::Identity(e) => e.fmt(f),
            Self::State(e) | Self::Keys(e) => e.fmt(f),
            Self::StateMismatch { path, detail } => {
                let path = path.display();
                write!(
                    f,
                    "agent state {path}: {detail}. Changing the AK needs a new registrar record: \
                     run keylime_tenant -c regdelete -u <id>, move {path} away, and restart \
                     keylet; or set the algorithms back"
                )
            }
            Self::Registrar(e) => e.fmt(f),
            Self::DeviceId(e) => e.fmt(f),
            Self::Credential(e) => write!(f, "the registrar's credential cannot be activated: {e}"),
            Self::Tls(e) => write!(f, "mTLS setup: {e}"),
            Self::Io { what, detail } => write!(f, "cannot {what}: {detail}"),
        }
    }
}

impl std::error::Error for StartError {}

/// The end of start-up, in pull and push mode alike: drops root (`run_as`),
/// then confines keylet to the paths its configuration names.
pub(crate) fn lock_down(c: &crate::config::AgentConfig) -> Result<(), StartError> {
    // The mTLS key and certificate keylet keeps in its own directory are read
    // again on SIGHUP, after the drop.
    let own: Vec<&std::path::Path> = [c.server_key.as_path(), c.server_cert.as_path()]
        .into_iter()
        .filter(|p| p.starts_with(&c.keylime_dir))
        .collect();
    crate::privileges::hand_over(c.run_as.as_ref(), &own).map_err(StartError::io(
        "hand the mTLS key and certificate to the run_as user",
    ))?;
    crate::privileges::drop_to(c.run_as.as_ref())
        .map_err(StartError::io("drop privileges (run_as)"))?;
    let device = choose_device(c.tpm_device.as_deref()).map_err(StartError::Device)?;
    crate::confine::apply(c, &device).map_err(StartError::io("confine keylet (confine)"))?;
    Ok(())
}
