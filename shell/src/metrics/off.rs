//! A build without the `metrics` feature: [`Metrics`] has no values, so every
//! `Option<Arc<Metrics>>` is `None` and each update compiles to nothing.
//! `metrics_listen` is refused when the configuration is read, so [`start`]
//! never has a listener to start.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use super::{Endpoint, TpmErrorKind};

/// The agent's metrics: none in this build. The methods mirror the
/// registry's and can never be called.
#[derive(Debug)]
pub enum Metrics {}

impl Metrics {
    pub(crate) fn quote_served(&self, _endpoint: Endpoint, _ok: bool) {
        match *self {}
    }

    pub(crate) fn tpm_error(&self, _kind: TpmErrorKind) {
        match *self {}
    }

    pub(crate) fn tpm_command(&self, _command: u32, _took: Duration) {
        match *self {}
    }

    pub(crate) fn push_attestation(&self, _accepted: bool) {
        match *self {}
    }

    pub(crate) fn verifier_answer(&self, _status: u16) {
        match *self {}
    }

    pub(crate) fn set_last_pass(&self, _unix: i64) {
        match *self {}
    }

    pub(crate) fn set_registered(&self, _registered: bool) {
        match *self {}
    }
}

/// The metrics listener: none in this build.
pub type MetricsServer = Infallible;

/// Why the metrics listener could not start: it cannot, in this build.
pub type MetricsError = Infallible;

/// No metrics: the configuration refuses `metrics_listen` in this build.
#[allow(clippy::unused_async)]
pub async fn start(
    _c: &crate::config::AgentConfig,
) -> Result<(Option<Arc<Metrics>>, Option<MetricsServer>), MetricsError> {
    Ok((None, None))
}
