//! A build without the `payload` feature: there is no secure directory, so
//! [`crate::payload::KeyBootstrap`] refuses payloads and never delivers.

use std::path::Path;

use super::{Delivered, NOT_BUILT, PayloadError, SymmetricKey};
use crate::config::{PayloadConfig, SecureSize};

/// Where delivered secrets would go: nowhere in this build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecureDir {}

impl SecureDir {
    /// The directory.
    #[must_use]
    pub(crate) fn path(&self) -> &Path {
        match *self {}
    }

    /// Refuses: this build delivers no payloads.
    ///
    /// # Errors
    ///
    /// Always [`PayloadError::PayloadRefused`].
    pub(crate) fn prepare(
        _keylime_dir: &Path,
        _size: &SecureSize,
        _run_as: Option<&(String, String)>,
    ) -> Result<Self, PayloadError> {
        Err(PayloadError::PayloadRefused(NOT_BUILT))
    }
}

/// Refuses: this build delivers no payloads.
///
/// # Errors
///
/// Always [`PayloadError::PayloadRefused`].
pub fn deliver(
    _secure: &Path,
    _config: &PayloadConfig,
    _k: &SymmetricKey,
    _payload: Option<&[u8]>,
) -> Result<Delivered, PayloadError> {
    Err(PayloadError::PayloadRefused(NOT_BUILT))
}
