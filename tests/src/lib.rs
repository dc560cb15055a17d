//! Shared helpers for the integration tests.

pub mod agent;
pub mod credential;
pub mod fault_proxy;
pub mod latency;
pub mod mssim_server;
pub mod swtpm;
