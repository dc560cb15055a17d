//! keylet's Prometheus metrics (option `metrics_listen`), served as the
//! OpenMetrics text format over plain HTTP on `GET /metrics`. The series are
//! listed with their meaning in README.md ("Metrics") and in each one's help
//! text (`registry.rs`); TPM errors are counted by [`TpmErrorKind`].
//!
//! Updates on the quote path are atomics and locks on memory allocated at
//! start-up: they do not allocate.

#[cfg(feature = "metrics")]
mod registry;
#[cfg(feature = "metrics")]
mod server;
// without the metrics feature (on by default): no registry, no listener
#[cfg(not(feature = "metrics"))]
mod off;
mod timed;

#[cfg(not(feature = "metrics"))]
pub(crate) use off::{Metrics, MetricsError, MetricsServer, start};
#[cfg(feature = "metrics")]
pub use registry::{Metrics, start};
#[cfg(feature = "metrics")]
pub use server::{MetricsError, MetricsServer, serve};
pub use timed::Timed;

/// The quote endpoint a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `GET /v2.x/quotes/identity`.
    Identity,
    /// `GET /v2.x/quotes/integrity`.
    Integrity,
}

/// What went wrong talking to the TPM: the `kind` label of
/// `keylet_tpm_errors_total` ([`TpmErrorKind::LABELS`] by discriminant),
/// each explained in that metric's help text (`registry.rs`) and README.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TpmErrorKind {
    Timeout,
    Connection,
    Malformed,
    Retry,
    Response,
    Deadline,
}

impl TpmErrorKind {
    /// The label values, in the order of the variants.
    const LABELS: [&'static str; 6] = [
        "timeout",
        "connection",
        "malformed",
        "retry",
        "response",
        "deadline",
    ];
}
