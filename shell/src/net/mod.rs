//! Outgoing connections: the HTTP(S) client shared by the registrar client
//! and the push-model verifier client.

pub mod client;

pub use client::{Connection, Endpoint, HttpError, Reply, Request, client_tls_config};
