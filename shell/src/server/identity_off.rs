//! A build without the `identity` feature: no identity listener for SPIRE.
//! `identity_listen` and `identity_socket` are refused when the configuration
//! is read, so there is never anything to bind or serve.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use super::{Attestation, ServerSettings};
use crate::config::IdentitySettings;

/// The bound identity endpoints: none in this build.
#[derive(Debug)]
pub struct IdentityListeners(());

impl IdentityListeners {
    /// Binds nothing (the configuration has refused the identity options).
    ///
    /// # Errors
    ///
    /// None.
    #[allow(clippy::unused_async)]
    pub async fn bind(_settings: &IdentitySettings) -> std::io::Result<Self> {
        Ok(Self(()))
    }

    /// Always true: nothing is served.
    #[must_use]
    pub(crate) fn is_empty(&self) -> bool {
        true
    }

    /// No TCP address.
    #[must_use]
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        None
    }
}

/// Serves nothing.
#[allow(clippy::unused_async)]
pub async fn serve_identity(
    _listeners: IdentityListeners,
    _settings: ServerSettings,
    _service: Arc<dyn Attestation>,
    _shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
) {
}
