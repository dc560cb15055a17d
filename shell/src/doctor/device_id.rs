//! Checks (with `enable_iak_idevid`): the IAK and IDevID are in the TPM (at
//! their handles, or re-created from their template and flushed again) and
//! each is the key its certificate is for.

use keylet_core::agent::Tpm;
use keylet_core::tpm::template_devid::devid_template;

use super::report::{Report, fail};
use crate::agent::device_id::certificate;
use crate::agent::device_key::{IAK, IDEVID, Role, match_key, template_for};
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

fn one(
    tpm: &mut Tpm<'_, &mut TpmTransport>,
    role: &Role,
    key: &DeviceKey,
    template: Option<keylet_core::tpm::template_devid::DevIdTemplate>,
) -> Result<String, String> {
    let cert = certificate(&key.cert, role.cert_option).map_err(|e| e.to_string())?;
    let mut public = vec![0u8; 1024];
    let (handle, how) = match key.handle {
        Some(h) => {
            let n = tpm
                .read_public(h, &mut public)
                .map_err(|e| format!("no key at {} {h:#010x}: {e}", role.handle_option))?;
            public.truncate(n);
            (h, format!("at {h:#010x}"))
        }
        None => {
            let t = template_for(key, role, template, &cert.spki).map_err(|e| e.to_string())?;
            let tmpl = devid_template(role.key, t).map_err(|e| e.to_string())?;
            let (h, n) = tpm
                .create_endorsement_primary(&tmpl, &mut public)
                .map_err(|e| {
                    format!(
                        "cannot re-create the {} from template {}: {e}",
                        role.name,
                        t.name()
                    )
                })?;
            public.truncate(n);
            tpm.flush(h).map_err(|e| {
                format!(
                    "could not flush the re-created {} {h:#010x}: {e}",
                    role.name
                )
            })?;
            (
                h,
                format!("re-created from template {} (flushed again)", t.name()),
            )
        }
    };
    match_key(&public, handle, role, &cert.spki, &key.cert).map_err(|e| e.to_string())?;
    Ok(how)
}
