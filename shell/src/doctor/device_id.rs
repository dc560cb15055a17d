//! Checks (with `enable_iak_idevid`): the IAK and IDevID are in the TPM (at
//! their handles, or re-created from their template and flushed again) and
//! each is the key its certificate is for.

use keylet_core::agent::Tpm;
use keylet_core::tpm::template_devid::DevIdTemplate;
use keylet_core::tpm::transport::BlockOn as _;

use super::report::{Report, fail};
use crate::agent::device_key::{IAK, IDEVID, Role, obtain};
use crate::config::{AgentConfig, DeviceKey};
use crate::tpm::TpmTransport;

/// One check per key, none without `enable_iak_idevid`.
pub(crate) fn check(tpm: &mut Tpm<'_, &mut TpmTransport>, c: &AgentConfig, report: &mut Report) {
    let Some(s) = &c.device_id else { return };
    for (name, role, key) in [
        ("tpm.iak", &IAK, &s.iak),
        ("tpm.idevid", &IDEVID, &s.idevid),
    ] {
        let outcome = one(tpm, role, key, s.template)
            .map(|how| format!("the {} {how} matches {}", role.name, key.cert.display()))
            .map_err(|e| {
                let fix = format!(
                    "point {} at the certificate of the {} (and {} at its key), or set \
                     iak_idevid_template to the template it was made from",
                    role.cert_option, role.name, role.handle_option
                );
                fail(e, fix)
            });
        report.add(name, outcome);
    }
}

/// The key of `role` as the agent obtains and checks it, a re-created one
/// flushed again; how it was found.
fn one(
    tpm: &mut Tpm<'_, &mut TpmTransport>,
    role: &Role,
    key: &DeviceKey,
    template: Option<DevIdTemplate>,
) -> Result<String, String> {
    let o = obtain(tpm, key, role, template).map_err(|e| e.to_string())?;
    Ok(match o.made_from {
        Some(t) => {
            let (name, handle) = (role.name, o.handle);
            tpm.flush(handle).block_on().map_err(|e| {
                format!("could not flush the re-created {name} {handle:#010x}: {e}")
            })?;
            format!("re-created from template {} (flushed again)", t.name())
        }
        None => format!("at {:#010x}", o.handle),
    })
}
