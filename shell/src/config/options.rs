//! The option names keylet knows: the Keylime agent's `[agent]` options.
//!
//! Options keylet implements are the ones [`super::AgentConfig::from_raw`]
//! reads; the rest are recognised so that a configuration written for another
//! Keylime agent loads without "unknown option" noise, and a non-default value
//! of an option keylet does not implement draws a warning saying so.

use std::collections::BTreeSet;

use super::source::{RawConfig, RawValue, Sourced};

/// Keylime agent options keylet recognises but does not implement, with the
/// value that means "feature off" (a different value draws a warning).
const NOT_IMPLEMENTED: &[(&str, &str)] = &[
    ("enable_revocation_notifications", "false"),
    ("revocation_notification_ip", "127.0.0.1"),
    ("revocation_notification_port", "8992"),
    ("tls_accept_invalid_certs", "false"),
    ("tls_accept_invalid_hostnames", "false"),
    // push-model agent options
    ("registrar_api_versions", "default"),
];

/// Options of the pre-2022 `[cloud_agent]` section and their `[agent]` names.
const LEGACY_NAMES: &[(&str, &str)] = &[
    ("agent_uuid", "uuid"),
    ("cloudagent_ip", "ip"),
    ("cloudagent_port", "port"),
    ("agent_contact_ip", "contact_ip"),
    ("agent_contact_port", "contact_port"),
    ("mtls_cert_enabled", "enable_agent_mtls"),
    ("rsa_keyname", "server_key"),
    ("mtls_cert", "server_cert"),
    ("private_key_pw", "server_key_password"),
    ("keylime_ca", "trusted_client_ca"),
    ("listen_notifications", "enable_revocation_notifications"),
];

/// Warns of the options in `raw` that are neither `read` nor recognised, of
/// recognised ones set to a feature keylet lacks, and of ignored sections.
pub(super) fn warn_unknown(raw: &RawConfig, read: &BTreeSet<String>, warnings: &mut Vec<String>) {
    for (name, Sourced { value, origin }) in &raw.values {
        let off = NOT_IMPLEMENTED.iter().find(|(n, _)| n == name);
        if off.is_none() && !read.contains(name) {
            let hint = suggest(name, read)
                .map(|s| format!(" (did you mean {s}?)"))
                .unwrap_or_default();
            warnings.push(format!(
                "unknown option {name} in {origin} is ignored{hint}"
            ));
        } else if let Some((_, off)) = off
            && match value {
                // a TOML array or table is never "off"
                RawValue::Str(s) => s.trim() != *off,
                value => value.to_string() != *off,
            }
        {
            warnings.push(format!(
                "option {name} (from {origin}) is not implemented by keylet and is ignored"
            ));
        }
    }
    for (path, section) in &raw.ignored_sections {
        let hint = if section == "cloud_agent" {
            " (the [cloud_agent] section was renamed [agent]; rename it and its options)"
        } else {
            ""
        };
        warnings.push(format!(
            "section [{section}] in {} is ignored; keylet reads only [agent]{hint}",
            path.display()
        ));
    }
}

/// The closest known option name, for "did you mean" hints.
fn suggest<'a>(option: &str, read: &'a BTreeSet<String>) -> Option<&'a str> {
    if let Some((_, new)) = LEGACY_NAMES.iter().find(|(old, _)| *old == option) {
        return Some(new);
    }
    read.iter()
        .map(String::as_str)
        .chain(NOT_IMPLEMENTED.iter().map(|(n, _)| *n))
        .map(|known| (edit_distance(option, known), known))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev.get(j).copied().unwrap_or(0) + usize::from(ca != *cb);
            let del = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let ins = cur.get(j).copied().unwrap_or(0) + 1;
            cur.push(sub.min(del).min(ins));
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_and_legacy_names_and_lists_no_option_twice() {
        let read = crate::config::tests::options_read();
        assert_eq!(suggest("registar_ip", &read), Some("registrar_ip"));
        assert_eq!(suggest("agent_uuid", &read), Some("uuid"));
        assert_eq!(suggest("completely_unrelated", &read), None);
        for (name, _) in NOT_IMPLEMENTED {
            assert!(!read.contains(*name), "{name} listed twice");
        }
    }
}
