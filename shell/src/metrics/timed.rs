//! A TPM transport that times every command into [`Metrics`].

use std::time::Instant;

use keylet_core::tpm::transport::Transport;

use super::Metrics;
use crate::tpm::{TpmTransport, TransportError, command_code};

/// Borrows a transport and records each round trip (when metrics are on).
#[derive(Debug)]
pub struct Timed<'a> {
    inner: &'a mut TpmTransport,
    metrics: Option<&'a Metrics>,
}

impl<'a> Timed<'a> {
    /// Wraps `inner`; `metrics` `None` times nothing.
    pub fn new(inner: &'a mut TpmTransport, metrics: Option<&'a Metrics>) -> Self {
        Self { inner, metrics }
    }
}

impl Transport for Timed<'_> {
    type Error = TransportError;

    fn transact(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, TransportError> {
        let Some(metrics) = self.metrics else {
            return self.inner.transact(command, response);
        };
        let start = Instant::now();
        let result = self.inner.transact(command, response);
        metrics.tpm_command(command_code(command), start.elapsed());
        result
    }

    fn backoff(&mut self, attempt: u32) {
        self.inner.backoff(attempt);
    }
}
