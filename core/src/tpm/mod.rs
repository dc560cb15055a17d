//! TPM 2.0 wire knowledge: command builders, response splitting, typed
//! response codes, borrowed response readers, templates and Names.
//!
//! Everything here works on caller-provided buffers and never allocates.
//! Commands are marshalled with `tpm2-protocol`; responses are split and read
//! here, raw response code first, so that a vendor code or an unknown
//! capability value never breaks a parse.

pub mod capability;
pub mod clock;
pub mod command;
pub mod command_keys;
pub mod command_name;
pub mod cursor;
pub mod fields;
pub mod handle;
pub mod lockout;
pub mod mssim;
pub mod name;
pub mod pcr_read;
pub mod rc;
pub mod reader;
pub mod response;
pub mod template;
pub mod template_devid;
pub mod template_ek;
pub mod transport;

/// A TPM handle (transient object, session, persistent object, NV index, PCR).
pub type Handle = u32;
