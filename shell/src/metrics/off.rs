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

/// The registry's update methods, each taking its arguments and never
/// running, since no [`Metrics`] exists.
macro_rules! no_updates {
    ($($name:ident($($arg:ty),*);)*) => {
        impl Metrics {
            $(pub(crate) fn $name(&self, $(_: $arg),*) {
                match *self {}
            })*
        }
    };
}

no_updates! {
    quote_served(Endpoint, bool);
    tpm_error(TpmErrorKind);
    tpm_command(u32, Duration);
    push_attestation(bool);
    verifier_answer(u16);
    set_last_pass(i64);
    set_registered(bool);
}

/// The metrics listener: none in this build.
pub type MetricsServer = Infallible;

/// Why the metrics listener could not start: it cannot, in this build.
pub type MetricsError = Infallible;

/// No metrics: the configuration refuses `metrics_listen` in this build.
pub async fn start(
    _c: &crate::config::AgentConfig,
) -> Result<(Option<Arc<Metrics>>, Option<MetricsServer>), MetricsError> {
    Ok((None, None))
}
