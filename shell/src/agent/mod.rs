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
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error("{0}")]
    Config(ConfigError),
    /// The `tpm_device` / TCTI value does not parse.
    #[error("option tpm_device / TCTI: {0}")]
    Device(DeviceError),
    #[error("cannot open the TPM: {0}")]
    Open(TransportError),
    /// A TPM step failed: what keylet was doing, and the error.
    #[error("cannot {step}: {error}{}", HintSuffix(.error))]
    Tpm {
        step: &'static str,
        error: AgentError<TransportError>,
    },
    #[error("{0}")]
    Identity(IdentityError),
    /// The agent state at `path` belongs to other settings: what differs.
    #[error(
        "agent state {path}: {detail}. Changing the AK needs a new registrar record: \
         run keylime_tenant -c regdelete -u <id>, move {path} away, and restart \
         keylet; or set the algorithms back",
        path = .path.display()
    )]
    StateMismatch { path: PathBuf, detail: String },
    /// The agent state, a key or a certificate cannot be read, written or made.
    #[error("{0}")]
    Store(StoreError),
    #[error("{0}")]
    Registrar(RegistrarError),
    /// The IAK or IDevID cannot be used (the message names the option to
    /// fix), or the registrar refused them.
    #[error("{0}")]
    DeviceId(String),
    #[error("the registrar's credential cannot be activated: {0}")]
    Credential(String),
    #[error("mTLS setup: {0}")]
    Tls(TlsError),
    /// A filesystem step failed: what keylet was doing, and the error.
    #[error("cannot {what}: {detail}")]
    Io { what: &'static str, detail: String },
}

impl StartError {
    /// [`StartError::Tpm`] of the `step` keylet was taking.
    pub(crate) fn tpm(step: &'static str) -> impl FnOnce(AgentError<TransportError>) -> Self {
        move |error| Self::Tpm { step, error }
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
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_)
            | Self::Device(_)
            | Self::Identity(IdentityError::Configured(_) | IdentityError::Host(_)) => 2,
            _ => 1,
        }
    }
}

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
