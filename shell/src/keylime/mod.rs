//! Keylime's JSON documents: every body keylet reads or writes, as typed
//! serde structures, in one place. The registrar's (`registrar.rs`), the
//! pull answers served to the verifier and tenant (`agent_api.rs`, the quote
//! with its logs streamed from their files by `streamed.rs`), the push
//! model's JSON:API documents (`push/`) and revocation notices
//! (`revocation.rs`).
//!
//! Every reader goes through [`decode`], whose [`JsonError`] names the JSON
//! path of what was wrong (as a JSON pointer, `/data/attributes/token`).

pub mod agent_api;
mod envelope;
mod json_path;
#[cfg(feature = "push")]
pub mod push;
pub mod registrar;
#[cfg(feature = "payload")]
pub mod revocation;
pub(crate) mod streamed;

pub(crate) use envelope::{Empty, Envelope, EnvelopeIn, SUCCESS};
pub use json_path::{JsonError, decode};
