//! The agent's software keys: the payload key (NK) and the mTLS server key
//! and certificate. Both are generated once, kept in `keylime_dir` (0600,
//! written atomically) and reused: the verifier pins the certificate and the
//! NK public key when the agent is added.

mod cert_file;
mod mtls;
mod mtls_install;
mod payload;

pub(crate) use cert_file::{parse_certs, read_certs};
pub(crate) use mtls::{load_or_create_mtls, new_mtls_pem, read_mtls};
pub(crate) use mtls_install::{complete_pending, files as mtls_files, install as install_mtls};
pub(crate) use payload::read_payload_key;
pub use payload::{PayloadKey, load_or_create_payload_key};
