//! Payload keys and payload delivery (keylime-protocol §4.5–§4.7, §6).
//!
//! The tenant sends the key share U (`POST /keys/ukey`, with an auth tag and
//! an optional encrypted payload), the verifier sends V (`POST /keys/vkey`)
//! after the first good quote; both are RSA-OAEP(SHA-1) wrapped with the
//! agent's payload key NK. `K = U xor V` is accepted once
//! `HMAC-SHA384(K, agent id)` equals the auth tag; then `GET /keys/verify`
//! proves K to the tenant and the payload is decrypted (AES-GCM) into the
//! secure directory.
//!
//! * [`shares`]: unwrapping shares and deriving K.
//! * [`cipher`]: Keylime's AES-GCM payload format.
//! * [`secure_dir`]: the tmpfs (or 0700 directory) the secrets go to.
//! * [`deliver`]: writing K and the payload, unzipping, the payload script.
//! * [`KeyBootstrap`]: all of it behind the HTTP handlers.

mod bootstrap;
pub mod cipher;
pub mod deliver;
mod error;
pub mod secure_dir;
pub mod shares;
mod unzip;

pub use bootstrap::{Delivery, KeyBootstrap};
pub use error::PayloadError;
pub use secure_dir::SecureDir;
pub use shares::SymmetricKey;
