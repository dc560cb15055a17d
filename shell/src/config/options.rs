//! The option names keylet knows: the Keylime agent's `[agent]` options.
//!
//! Options keylet implements are read by [`super::AgentConfig::from_raw`];
//! the rest are recognised so that a configuration written for another
//! Keylime agent loads without "unknown option" noise, and a non-default value
//! of an option keylet does not implement draws a warning saying so.

/// Options read by keylet.
pub(crate) const IMPLEMENTED: &[&str] = &[
    "version",
    "api_versions",
    "uuid",
    "ip",
    "port",
    "contact_ip",
    "contact_port",
    "registrar_ip",
    "registrar_port",
    "registrar_tls_enabled",
    "registrar_tls_port",
    "registrar_tls_ca_cert",
    "enable_agent_mtls",
    "keylime_dir",
    "server_key",
    "server_key_password",
    "server_cert",
    "payload_key",
    "payload_key_password",
    "trusted_client_ca",
    "tpm_hash_alg",
    "tpm_encryption_alg",
    "tpm_signing_alg",
    "ek_handle",
    "tpm_ownerpassword",
    "run_as",
    "agent_data_path",
    "ima_ml_path",
    "measuredboot_ml_path",
    "exponential_backoff_initial_delay",
    "exponential_backoff_max_retries",
    "exponential_backoff_max_delay",
    // keylet's own
    "tpm_device",
    "tpm_clock_repair",
    "confine", // Landlock self-confinement after start-up
    // keylet's own: the local identity listener for SPIRE
    "identity_listen",
    "identity_socket",
    "identity_allow_uids",
    "identity_allow_gids",
    // metrics
    "metrics_listen",
    "metrics_allow_remote",
    // payload keys and delivery
    "enc_keyname",
    "dec_payload_file",
    "secure_size",
    "extract_payload_zip",
    "payload_script",
    "enable_insecure_payload",
    "enable_payload_script", // keylet's own
    // revocation notifications
    "revocation_cert",
    "revocation_actions",
    "revocation_actions_dir",
    "allow_payload_revocation_actions",
    "enable_revocation_actions", // keylet's own
    // the push model (Keylime REST API v3.0)
    "attestation_mode", // keylet's own: "pull" or "push"
    "verifier_url",
    "verifier_tls_ca_cert",
    "attestation_interval_seconds",
    "uefi_logs_evidence_version",
    "certification_keys_server_identifier",
    // TCG device identity: persistent IAK and IDevID with their certificates
    "enable_iak_idevid",
    "iak_idevid_template",
    "iak_idevid_asymmetric_alg",
    "iak_idevid_name_alg",
    "iak_handle",
    "iak_cert",
    "iak_password",
    "idevid_handle",
    "idevid_cert",
    "idevid_password",
];

/// Keylime agent options keylet recognises but does not implement, with the
/// value that means "feature off" (a different value draws a warning).
pub(crate) const NOT_IMPLEMENTED: &[(&str, &str)] = &[
    ("enable_revocation_notifications", "false"),
    ("revocation_notification_ip", "127.0.0.1"),
    ("revocation_notification_port", "8992"),
    ("tls_accept_invalid_certs", "false"),
    ("tls_accept_invalid_hostnames", "false"),
    // push-model agent options
    ("registrar_api_versions", "default"),
];

/// Options of the pre-2022 `[cloud_agent]` section and their `[agent]` names.
pub(crate) const LEGACY_NAMES: &[(&str, &str)] = &[
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

/// Whether keylet knows `option` at all.
#[must_use]
pub(crate) fn is_known(option: &str) -> bool {
    IMPLEMENTED.contains(&option) || NOT_IMPLEMENTED.iter().any(|(n, _)| *n == option)
}

/// The closest known option name, for "did you mean" hints.
#[must_use]
pub(crate) fn suggest(option: &str) -> Option<&'static str> {
    if let Some((_, new)) = LEGACY_NAMES.iter().find(|(old, _)| *old == option) {
        return Some(new);
    }
    IMPLEMENTED
        .iter()
        .copied()
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
    fn suggests_close_and_legacy_names() {
        assert_eq!(suggest("registar_ip"), Some("registrar_ip"));
        assert_eq!(suggest("agent_uuid"), Some("uuid"));
        assert_eq!(suggest("completely_unrelated"), None);
    }

    #[test]
    fn implemented_and_recognised_do_not_overlap() {
        for (name, _) in NOT_IMPLEMENTED {
            assert!(!IMPLEMENTED.contains(name), "{name} listed twice");
        }
    }
}
