//! keylet's agent API server: the Keylime pull protocol over HTTPS with mutual
//! TLS (or plain HTTP when mTLS is disabled), for API versions 2.1 to 2.6.
//! Quote responses stream the IMA and measured-boot logs straight from their
//! files (see [`crate::logs`]), so their size does not grow memory use.

mod body;
mod handlers;
#[cfg(feature = "identity")]
mod identity_listener; // identity listener for SPIRE
#[cfg(not(feature = "identity"))]
#[path = "identity_off.rs"]
mod identity_listener;
mod keys;
mod listener;
mod open_files;
mod pending;
pub mod query;
pub mod reload; // certificates without downtime
mod response;
mod revocation;
mod service;
pub mod tls;
mod version;

pub use identity_listener::{IdentityListeners, serve_identity};
pub use query::{IntegrityQuery, Nonce, QueryError};
pub use service::{AgentInfo, AttestError, Attestation, TpmAnswer};
pub use tls::{ServerTls, TlsError, TlsFiles};
pub use version::{ApiVersion, ApiVersions};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::logs::{ImaLog, MeasuredBootLog};
use crate::payload::KeyBootstrap;

/// The default [`Limits::quote_deadline`].
pub(crate) const QUOTE_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Requests served at once, each from its complete request head to the
    /// end of its response; more wait, counted in `max_pending`.
    pub(crate) max_connections: usize,
    /// Connections that may wait to be served (for their first byte, TLS
    /// handshake, request head or a serving slot); when full, the oldest of
    /// the source with the most makes room for a new one. `None`: derived
    /// from the limit on open files (raised to its hard limit at start).
    pub(crate) max_pending: Option<usize>,
    /// Until its first byte, a connection costs a small task and a socket,
    /// no TLS state.
    pub(crate) first_byte_timeout: Duration,
    pub(crate) tls_handshake_timeout: Duration,
    /// For a request's headers (one request per connection, no keep-alive).
    pub(crate) header_read_timeout: Duration,
    /// How long requests still open when shutdown begins may run on: short,
    /// so that a TPM command that hangs cannot hold up keylet's stop.
    pub(crate) shutdown_grace: Duration,
    /// How long a quote request waits for the TPM (its turn included) before
    /// it is answered 500, which the verifier retries: well below the
    /// verifier's 60 s `request_timeout`, far above a healthy quote (< 2 s).
    pub quote_deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 16,
            max_pending: None,
            first_byte_timeout: Duration::from_secs(5),
            tls_handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(1),
            quote_deadline: QUOTE_DEADLINE,
        }
    }
}

/// How the server runs; the default serves plain HTTP, every supported API
/// version, no logs, no boot time, with default limits.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ServerSettings {
    /// `None` serves plain HTTP (only when `enable_agent_mtls = false`).
    pub tls: Option<ServerTls>,
    pub versions: ApiVersions,
    /// Sent when PCR 10 is quoted.
    pub ima_log: Option<Arc<ImaLog>>,
    /// Sent when PCR 0 is quoted.
    pub mb_log: Option<Arc<MeasuredBootLog>>,
    /// Sent with quotes as `boottime` (read once at start).
    pub boottime: Option<u64>,
    pub limits: Limits,
    /// Counts quotes by endpoint and result; `None` when metrics are off.
    pub(crate) metrics: Option<Arc<crate::metrics::Metrics>>,
    /// For `/keys/ukey`, `/keys/vkey` and `/keys/verify`; `None` answers
    /// them with 400.
    pub payload_keys: Option<Arc<KeyBootstrap>>,
    /// `None` acknowledges revocation notifications without a check.
    pub(crate) revocations: Option<Arc<crate::revocation::Revocations>>,
    /// The TPM worker every quote runs on (clones of the settings share it).
    pub(crate) tpm_worker: crate::executor::TpmWorker,
}

/// Serves on a bound `listener` until `shutdown` completes; then open
/// connections finish their requests (see [`Limits::shutdown_grace`]).
pub async fn serve_on(
    listener: TcpListener,
    settings: ServerSettings,
    service: Arc<dyn Attestation>,
    shutdown: impl Future<Output = ()>,
) {
    match (&settings.tls, listener.local_addr()) {
        (Some(_), Ok(addr)) => log::info!("serving the agent API with mTLS on {addr}"),
        (None, Ok(addr)) => {
            log::warn!("serving the agent API over plain HTTP on {addr} (mTLS disabled)")
        }
        (_, Err(e)) => log::warn!("serving the agent API on an unknown address: {e}"),
    }
    let handler = handlers::Handler {
        service,
        settings,
        identity_only: false,
    };
    listener::accept_loop(listener, Arc::new(handler), shutdown).await;
}
