//! `keylet run`, the composition root: the configuration's warnings, the
//! keylime_dir, then pull mode (`pull.rs`) or push mode (`push.rs`), two
//! siblings built on the same start-up (`startup.rs`).

use std::net::SocketAddr;

use super::StartError;
use super::startup::check_keylime_dir;
use crate::config::Loaded;

/// Runs the agent until a stop signal.
///
/// # Errors
///
/// [`StartError`] naming the step that failed. The TPM objects keylet
/// created are flushed on every path: the [`super::TpmBox`] owning them flushes
/// them when dropped.
pub(crate) async fn run(loaded: Loaded) -> Result<(), StartError> {
    for w in &loaded.warnings {
        log::warn!("{w}");
    }
    let c = &loaded.config;
    check_keylime_dir(c)?;
    // (a build without the push feature refuses attestation_mode = "push")
    #[cfg(feature = "push")]
    if c.push.mode == crate::config::AttestationMode::Push {
        return super::push::run_push(c).await;
    }
    super::pull::run_pull(c, SocketAddr::new(c.ip, c.port)).await
}
