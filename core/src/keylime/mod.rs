//! Keylime's own encodings (keylime-protocol §2.1, §3.4, §3.5, §5).
//!
//! None of these are TPM marshalling; each is written into (or read from)
//! caller-provided buffers without allocation.
//!
//! * [`pcr_blob`]: the tpm2-tools little-endian PCR dump, the quote's third part.
//! * [`quote_string`]: `r<attest>:<signature>:<pcr blob>` in base64.
//! * [`credential`]: the registrar's makecredential blob.
//! * [`auth_tag`]: the activation HMAC and `/keys/verify` HMAC in lowercase hex.
//! * [`agent_id`]: agent ids, UUIDs and `hash_ek`.
//! * [`spki`]: SubjectPublicKeyInfo DER and PEM of TPM public keys.
//! * [`hex`]: keylet's one hex encoder and decoder.

pub mod agent_id;
pub mod auth_tag;
pub mod credential;
pub mod hex;
pub mod pcr_blob;
pub mod quote_string;
pub mod spki;
