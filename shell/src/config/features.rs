//! Options that ask for a subsystem this keylet was built without (the
//! cargo features `metrics`, `identity`, `push`, `payload` and `iak`, all in the
//! default build): each is refused with the feature named, never ignored.
//! Options that only tune a missing subsystem (file names, sizes) keep
//! their defaults and are not refused, so Keylime's stock agent
//! configuration still loads.

use super::value::Values;
use super::{AgentConfig, AttestationMode, ConfigError};

/// Fails on the first option that needs a feature this build lacks.
///
/// # Errors
///
/// [`ConfigError::Invalid`] naming the option and the missing feature.
pub(super) fn refuse_missing(v: &Values<'_>, c: &AgentConfig) -> Result<(), ConfigError> {
    let wanted = [
        (
            "metrics_listen",
            "metrics",
            cfg!(feature = "metrics"),
            c.metrics_listen.is_some(),
        ),
        (
            "identity_listen",
            "identity",
            cfg!(feature = "identity"),
            c.identity.listen.is_some(),
        ),
        (
            "identity_socket",
            "identity",
            cfg!(feature = "identity"),
            c.identity.socket.is_some(),
        ),
        (
            "attestation_mode",
            "push",
            cfg!(feature = "push"),
            c.push.mode == AttestationMode::Push,
        ),
        (
            "enable_insecure_payload",
            "payload",
            cfg!(feature = "payload"),
            c.payload.enable_insecure_payload,
        ),
        (
            "enable_payload_script",
            "payload",
            cfg!(feature = "payload"),
            c.payload.enable_payload_script,
        ),
        (
            "enable_revocation_actions",
            "payload",
            cfg!(feature = "payload"),
            c.revocation.enable_actions,
        ),
        (
            "enable_iak_idevid",
            "iak",
            cfg!(feature = "iak"),
            c.device_id.is_some(),
        ),
    ];
    match wanted.iter().find(|(_, _, built, set)| !built && *set) {
        Some((option, feature, _, _)) => Err(v.error(
            option,
            &format!(
                "its default: this keylet was built without the {feature} feature; remove the \
                 option, or use a default build (cargo build --release -p keylet) or one with \
                 --features {feature}"
            ),
        )),
        None => Ok(()),
    }
}
