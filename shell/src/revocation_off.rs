//! A build without the `payload` feature: revocation notifications are
//! answered and logged, nothing is checked or run
//! (`enable_revocation_actions` is refused when the configuration is read).

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::RevocationConfig;

/// A notification's body: read as JSON, not used in this build.
pub(crate) type Notification = serde::de::IgnoredAny;

/// Why a notification was refused: never, in this build.
pub type RevocationError = std::convert::Infallible;

/// Revocation handling: none in this build.
#[derive(Debug)]
pub enum Revocations {}

impl Revocations {
    /// Never called: no [`Revocations`] exists in this build.
    ///
    /// # Errors
    ///
    /// None.
    pub(crate) fn handle(
        self: &Arc<Self>,
        _notification: Notification,
    ) -> Result<(), RevocationError> {
        match **self {}
    }
}

/// No revocation handling in this build.
#[must_use]
pub(crate) fn handling(
    _config: RevocationConfig,
    _payload_dir: Option<PathBuf>,
    _work_dir: PathBuf,
) -> Option<Arc<Revocations>> {
    None
}
