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

//!
//! Without the `payload` feature (on in the default build) keylet still
//! takes the shares and proves K on `/keys/verify` (the tenant's `add` needs
//! that), but refuses payloads and writes nothing: no secure directory, no
//! decryption, no zip, no payload script.

mod bootstrap;
#[cfg(feature = "payload")]
pub mod cipher;
#[cfg(feature = "payload")]
pub mod deliver;
mod error;
#[cfg(feature = "payload")]
pub mod secure_dir;
pub mod shares;
#[cfg(feature = "payload")]
mod unzip;
// the stand-ins of a build without the payload feature
#[cfg(not(feature = "payload"))]
#[path = "delivery_off.rs"]
mod deliver;
#[cfg(not(feature = "payload"))]
pub(crate) use deliver::SecureDir;

/// IV length of Keylime's AES-GCM payloads (not GCM's usual 12).
pub(crate) const IV_LEN: usize = 16;
/// GCM tag length of Keylime's payloads.
pub(crate) const TAG_LEN: usize = 16;

/// Why a build without the payload feature refuses payloads.
#[cfg_attr(feature = "payload", allow(dead_code))]
const NOT_BUILT: &str = "this keylet was built without the payload feature, so it accepts no \
    payloads (K is still derived and proven on /keys/verify); use a default build to deliver payloads";

pub use bootstrap::{Delivered, Delivery, KeyBootstrap};
pub use error::PayloadError;
#[cfg(feature = "payload")]
pub use secure_dir::SecureDir;
pub use shares::SymmetricKey;
