//! Outgoing connections: the HTTP(S) client shared by the registrar client
//! and the push-model verifier client, and the one stream type every HTTP
//! connection (outgoing or served) runs over.

pub mod client;
pub(crate) mod stream;

pub(crate) use client::{Connection, Endpoint, HttpError, Reply, Request, client_tls_config};
