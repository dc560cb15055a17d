//! A keylet built without the `iak` feature has no device identity: the
//! configuration refuses `enable_iak_idevid`, so `load` is never reached
//! and no [`DeviceIdentity`] can exist.

use keylet_core::tpm::Handle;

use super::StartError;
use super::tpm_box::TpmBox;
use crate::config::DeviceIdSettings;
use crate::registrar::DeviceIdFields;

/// No value: this build cannot hold an IAK and IDevID.
#[derive(Debug)]
pub(crate) enum DeviceIdentity {}

/// Always fails: this build lacks the `iak` feature.
///
/// # Errors
///
/// Always [`StartError::DeviceId`].
pub(crate) fn load(_tpm: &mut TpmBox, _s: &DeviceIdSettings) -> Result<DeviceIdentity, StartError> {
    Err(StartError::DeviceId(
        "option enable_iak_idevid: this keylet was built without the iak feature".into(),
    ))
}

impl DeviceIdentity {
    /// Never called: no value exists.
    ///
    /// # Errors
    ///
    /// None.
    pub(crate) fn certify_ak(
        &mut self,
        _tpm: &mut TpmBox,
        _ak: Handle,
        _ak_public: &[u8],
        _agent_id: &str,
        _api: (u8, u8),
    ) -> Result<DeviceIdFields<'_>, StartError> {
        match *self {}
    }
}
