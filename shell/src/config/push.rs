//! The attestation model (`attestation_mode`, keylet's own option) and the
//! Keylime push-model agent's options keylet implements: `verifier_url`,
//! `verifier_tls_ca_cert`, `attestation_interval_seconds`,
//! `uefi_logs_evidence_version` and `certification_keys_server_identifier`.

use std::path::PathBuf;
use std::time::Duration;

use super::ConfigError;
use super::value::Values;

/// How the verifier gets evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AttestationMode {
    /// The verifier polls keylet's HTTPS API (Keylime's classic model).
    #[default]
    Pull,
    /// keylet sends evidence to the verifier (Keylime REST API v3.0); it listens on no port for it.
    Push,
}

/// Where the push-model verifier is: `https://HOST[:PORT][/PREFIX]`. The host is a name or IP
/// address (IPv6 without brackets) that its certificate must name; the port is 443 when the URL has
/// none; the prefix comes before `/v3.0/...`, without a trailing slash ("" for none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierUrl {
    pub host: String,
    pub port: u16,
    pub prefix: String,
}

impl std::fmt::Display for VerifierUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let address = crate::net::HostPort(&self.host, self.port);
        write!(f, "https://{address}{}", self.prefix)
    }
}

/// The push model's settings (read in both modes; used in push mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSettings {
    pub mode: AttestationMode,
    pub verifier_url: VerifierUrl,
    /// `verifier_tls_ca_cert`: the CA file that verifies the verifier.
    pub verifier_tls_ca_cert: PathBuf,
    /// `attestation_interval_seconds`: the pause between attestations when
    /// the verifier does not say (`seconds_to_next_attestation` wins).
    pub attestation_interval: Duration,
    /// `uefi_logs_evidence_version`: the UEFI log format version announced.
    pub uefi_logs_evidence_version: String,
    /// `certification_keys_server_identifier`: how the AK is named to the verifier.
    pub server_identifier: String,
}

const URL_FORM: &str = "an https URL such as https://verifier.example:8881 (https only: keylet \
                        verifies the verifier's certificate against verifier_tls_ca_cert and its \
                        name against this host; no user, query or fragment)";

/// Parses `verifier_url`; `None` when the text is not an accepted URL (the
/// caller names the option).
#[must_use]
pub fn parse_verifier_url(s: &str) -> Option<VerifierUrl> {
    let rest = s.trim().strip_prefix("https://")?;
    if rest.contains(['?', '#', '@']) || rest.chars().any(char::is_whitespace) {
        return None;
    }
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        h.parse::<std::net::Ipv6Addr>().ok()?;
        // nothing but ":port" may follow the bracket
        let port = match after {
            "" => None,
            after => Some(after.strip_prefix(':')?),
        };
        (h, port)
    } else {
        let (h, port) = authority
            .rsplit_once(':')
            .map_or((authority, None), |(h, p)| (h, Some(p)));
        let name = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'-';
        if h.is_empty() || !h.bytes().all(name) {
            return None;
        }
        (h, port)
    };
    let port = port.map_or(Some(443), |p| p.parse().ok().filter(|p| *p != 0))?;
    Some(VerifierUrl {
        host: host.to_string(),
        port,
        prefix: path.trim_end_matches('/').to_string(),
    })
}

pub(super) fn parse(v: &Values<'_>) -> Result<PushSettings, ConfigError> {
    let mode = v.parse(
        "attestation_mode",
        "pull",
        "\"pull\" (the verifier polls keylet's API; the default) or \"push\" (keylet sends \
         evidence to verifier_url, Keylime REST API v3.0, and listens on no port)",
        |s| match s {
            "pull" => Some(AttestationMode::Pull),
            "push" => Some(AttestationMode::Push),
            _ => None,
        },
    )?;
    // Keylime's sample agent.conf writes "" for the options a pull agent leaves unset.
    let or_default = |option, default: &str| {
        let s = v.string(option, default)?;
        Ok::<_, ConfigError>(if s.is_empty() { default.to_string() } else { s })
    };
    let url = or_default("verifier_url", "https://localhost:8881")?;
    let verifier_url = parse_verifier_url(&url).ok_or_else(|| v.error("verifier_url", URL_FORM))?;
    let interval = v.integer("attestation_interval_seconds", 60, 1..=86_400)?;
    Ok(PushSettings {
        mode,
        verifier_url,
        verifier_tls_ca_cert: v.path("verifier_tls_ca_cert", &v.dir, "cv_ca/cacert.crt")?,
        attestation_interval: Duration::from_secs(interval),
        uefi_logs_evidence_version: or_default("uefi_logs_evidence_version", "2.1")?,
        server_identifier: or_default("certification_keys_server_identifier", "ak")?,
    })
}
