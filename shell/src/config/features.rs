//! Options that ask for a subsystem this keylet was built without (the cargo features `metrics`,
//! `identity`, `push`, `payload` and `iak`, all in the default build): each is refused with the
//! feature named, never ignored. Options that only tune a missing subsystem (file names, sizes)
//! keep their defaults and are not refused, so Keylime's stock agent configuration still loads.

use super::value::Values;
use super::{AgentConfig, AttestationMode, ConfigError};

/// Fails on the first option that needs a feature this build lacks, naming
/// the option and the feature.
pub(super) fn refuse_missing(v: &Values<'_>, c: &AgentConfig) -> Result<(), ConfigError> {
    let p = &c.payload;
    let asked = [
        ("metrics_listen", c.metrics_listen.is_some()),
        ("identity_listen", c.identity.listen.is_some()),
        ("identity_socket", c.identity.socket.is_some()),
        ("attestation_mode", c.push.mode == AttestationMode::Push),
        ("enable_insecure_payload", p.enable_insecure_payload),
        ("enable_payload_script", p.enable_payload_script),
        ("enable_revocation_actions", c.revocation.enable_actions),
        ("enable_iak_idevid", c.device_id.is_some()),
    ];
    for (option, set) in asked {
        let (feature, built) = feature(option);
        if set && !built {
            let form = format!(
                "its default: this keylet was built without the {feature} feature; remove the \
                 option, or use a default build (cargo build --release -p keylet) or one with \
                 --features {feature}"
            );
            return Err(v.error(option, &form));
        }
    }
    Ok(())
}

/// The cargo feature an option asks for when set, and whether this keylet has it.
pub(super) fn feature(option: &str) -> (&'static str, bool) {
    match option {
        "metrics_listen" => ("metrics", cfg!(feature = "metrics")),
        "identity_listen" | "identity_socket" => ("identity", cfg!(feature = "identity")),
        "attestation_mode" => ("push", cfg!(feature = "push")),
        "enable_iak_idevid" => ("iak", cfg!(feature = "iak")),
        _ => ("payload", cfg!(feature = "payload")),
    }
}
