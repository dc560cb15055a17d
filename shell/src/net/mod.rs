//! Outgoing connections: the HTTP(S) client shared by the registrar client
//! and the push-model verifier client, and the one stream type every HTTP
//! connection (outgoing or served) runs over.

pub mod client;
pub(crate) mod stream;

pub(crate) use client::{Connection, Endpoint, HttpError, Request, client_tls_config};

/// `host:port`, with an IPv6 host in brackets: the authority of a URL or of
/// an HTTP `Host` header.
pub(crate) struct HostPort<'a>(pub(crate) &'a str, pub(crate) u16);

impl std::fmt::Display for HostPort<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self(host, port) = self;
        if host.contains(':') {
            write!(f, "[{host}]:{port}")
        } else {
            write!(f, "{host}:{port}")
        }
    }
}
