//! A build without the `metrics` feature: [`Metrics`] has no values, so every
//! `Option<Arc<Metrics>>` is `None` and each update compiles to nothing.
//! `metrics_listen` is refused when the configuration is read, so [`start`]
//! never has a listener to start.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use super::{Endpoint, TpmErrorKind};

/// The agent's metrics: none in this build.
#[derive(Debug)]
pub enum Metrics {}

impl Metrics {
    /// Counts one quote request.
    pub(crate) fn quote_served(&self, _endpoint: Endpoint, _ok: bool) {
        match *self {}
    }

    /// Counts one TPM error of `kind`.
    pub(crate) fn tpm_error(&self, _kind: TpmErrorKind) {
        match *self {}
    }

    /// Records one TPM command's round trip.
    pub(crate) fn tpm_command(&self, _command: u32, _took: Duration) {
        match *self {}
    }

    /// Push mode: counts one attestation round.
    pub(crate) fn push_attestation(&self, _accepted: bool) {
        match *self {}
    }

    /// Push mode: counts one verifier answer.
    pub(crate) fn verifier_answer(&self, _status: u16) {
        match *self {}
    }

    /// Push mode: the time of the verifier's last PASS for this agent.
    pub(crate) fn set_last_pass(&self, _unix: i64) {
        match *self {}
    }

    /// Sets the registration state.
    pub(crate) fn set_registered(&self, _registered: bool) {
        match *self {}
    }
}

/// The metrics listener: none in this build.
pub type MetricsServer = Infallible;

/// Why the metrics listener could not start: it cannot, in this build.
pub type MetricsError = Infallible;

/// No metrics: the configuration refuses `metrics_listen` in this build.
///
/// # Errors
///
/// None.
#[allow(clippy::unused_async)]
pub async fn start(
    _c: &crate::config::AgentConfig,
) -> Result<(Option<Arc<Metrics>>, Option<MetricsServer>), MetricsError> {
    Ok((None, None))
}
