//! # keylet-core
//!
//! The TPM 2.0 and Keylime wire knowledge of the keylet attestation agent.
//!
//! ## Constraints
//!
//! * `#![no_std]`, and no `alloc` unless the optional `alloc` feature is on
//!   (it only adds RSA signature verification; the quote path never needs it).
//! * No I/O. The caller moves bytes to and from the TPM through
//!   [`tpm::transport::Transport`]; every buffer is caller-provided.
//! * No `unsafe` code, and no panic on any input: clippy denies `unwrap_used`,
//!   `expect_used`, `panic` and `indexing_slicing`, and every parser of outside
//!   bytes has a fuzz target.
//!
//! ## Layout
//!
//! * [`alg`]: the key and signature algorithms, with Keylime's names.
//! * [`pcr`]: hash banks, PCR masks and PCR values shared by everything else.
//! * [`tpm`]: command builders over `tpm2-protocol`, response splitting and
//!   typed response codes, borrowed response readers, EK/AK templates.
//! * [`public`]: reading a TPM2B_PUBLIC into the key it carries.
//! * [`keylime`]: Keylime's own encodings (quote string, PCR blob, credential
//!   blob, auth tag, agent id, SubjectPublicKeyInfo).
//! * [`verify`]: quote checking (TPMS_ATTEST, signature, PCR digest).
//! * [`agent`]: the command sequences the agent runs against a TPM (EK, AK,
//!   activation, the quote path), generic over the transport.
#![no_std]
#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)
)]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod agent;
pub mod alg;
pub mod keylime;
pub mod pcr;
pub mod public;
pub mod tpm;
pub mod verify;
