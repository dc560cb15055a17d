//! A TPM transport that times every command into [`Metrics`].

use std::time::Instant;

use keylet_core::tpm::response::{command_code, raw_rc};
use keylet_core::tpm::transport::Transport;

use super::{Metrics, TpmErrorKind};
use crate::tpm::{Failure, TpmTransport, TransportError};

/// Borrows a transport and records each round trip and each error (when
/// metrics are on).
#[derive(Debug)]
pub struct Timed<'a> {
    inner: &'a mut TpmTransport,
    metrics: Option<&'a Metrics>,
}

impl<'a> Timed<'a> {
    /// Wraps `inner`; `metrics` `None` times nothing.
    pub(crate) fn new(inner: &'a mut TpmTransport, metrics: Option<&'a Metrics>) -> Self {
        Self { inner, metrics }
    }
}

impl Transport for Timed<'_> {
    type Error = TransportError;

    async fn transact(
        &mut self,
        command: &[u8],
        response: &mut [u8],
    ) -> Result<usize, TransportError> {
        let Some(metrics) = self.metrics else {
            return self.inner.transact(command, response).await;
        };
        let start = Instant::now();
        let result = self.inner.transact(command, response).await;
        metrics.tpm_command(command_code(command), start.elapsed());
        if let Some(kind) = error_kind(&result, response) {
            metrics.tpm_error(kind);
        }
        result
    }

    async fn backoff(&mut self, attempt: u32) {
        self.inner.backoff(attempt).await;
    }
}

/// The error a round trip counts as, if any: the transport's failure, or the
/// response code in the header of a whole response.
fn error_kind(result: &Result<usize, TransportError>, response: &[u8]) -> Option<TpmErrorKind> {
    match result {
        Ok(_) => match raw_rc(response) {
            None => Some(TpmErrorKind::Malformed),
            Some(rc) if rc.is_success() => None,
            Some(rc) if rc.is_retryable() => Some(TpmErrorKind::Retry),
            Some(_) => Some(TpmErrorKind::Response),
        },
        Err(e) => Some(match e.failure {
            Failure::Timeout(_) => TpmErrorKind::Timeout,
            Failure::BadSize { .. } => TpmErrorKind::Malformed,
            _ => TpmErrorKind::Connection,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_codes_and_failures_have_kinds() {
        let frame = |rc: u32| [&[0x80, 0x01, 0, 0, 0, 10][..], &rc.to_be_bytes()].concat();
        for (rc, kind) in [
            (0, None),
            (0x922, Some(TpmErrorKind::Retry)),
            (0x908, Some(TpmErrorKind::Retry)),
            (0x90A, Some(TpmErrorKind::Retry)),
            (0x18B, Some(TpmErrorKind::Response)),
        ] {
            assert_eq!(error_kind(&Ok(10), &frame(rc)), kind, "{rc:#x}");
        }
        let err = |failure| {
            Err(TransportError {
                device: "tcp://x".into(),
                cc: 0x158,
                failure,
            })
        };
        for (failure, kind) in [
            (Failure::Closed, TpmErrorKind::Connection),
            (Failure::Timeout(90), TpmErrorKind::Timeout),
            (
                Failure::BadSize {
                    size: 3,
                    capacity: 4096,
                },
                TpmErrorKind::Malformed,
            ),
        ] {
            assert_eq!(error_kind(&err(failure), &[]), Some(kind));
        }
    }
}
