//! keylet: a small TPM 2.0 attestation agent that speaks the Keylime pull protocol.
//!
//! The shell does I/O and holds no TPM or Keylime wire knowledge of its own:
//! every command frame, response parse and Keylime encoding comes from
//! `keylet-core`.
//!
//! Items are `pub(crate)` unless another crate (the binary, the tests, the
//! benches, the fuzz targets) uses them, so the dead-code lint sees the whole
//! shell in the default build. A build without some optional subsystem leaves
//! the helpers only they use unused, which is expected there.

#![cfg_attr(
    not(all(
        feature = "doctor",
        feature = "metrics",
        feature = "payload",
        feature = "identity",
        feature = "push",
        feature = "iak"
    )),
    allow(dead_code, unused_imports)
)]

pub mod agent;
pub mod backoff;
pub mod cli;
pub mod config;
pub mod confine; // Landlock self-confinement
pub mod console;
#[cfg(feature = "doctor")]
pub mod doctor;
pub mod executor; // the TPM worker and the operator scripts' executor
pub mod keylime;
pub mod keys;
pub mod logs;
pub mod metrics;
pub mod net;
pub mod payload; // payload keys and delivery
pub mod privileges;
#[cfg(feature = "push")]
pub mod push;
pub mod registrar;
pub mod revocation;
pub mod rotate; // keylet rotate-cert
#[cfg(feature = "payload")]
pub mod script;
pub mod secret; // passwords and tokens: wiped on drop, never printed
pub mod server;
pub mod state;
pub mod store;
pub mod tls;
pub mod tpm;
