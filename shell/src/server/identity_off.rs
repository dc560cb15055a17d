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
    /// Binds nothing, so it never fails.
    pub async fn bind(_settings: &IdentitySettings) -> std::io::Result<Self> {
        Ok(Self(()))
    }

    pub(crate) fn is_empty(&self) -> bool {
        true
    }

    #[must_use]
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        None
    }
}

/// Serves nothing.
pub async fn serve_identity(
    _: IdentityListeners,
    _: ServerSettings,
    _: Arc<dyn Attestation>,
    _: Pin<Box<dyn Future<Output = ()> + Send>>,
) {
}
