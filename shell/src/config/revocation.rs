//! The revocation options: which certificate signs the verifier's
//! revocation notifications and which actions run when one arrives.

use std::path::PathBuf;

use super::ConfigError;
use super::value::Values;

/// Where the certificate that checks revocation notifications comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationCert {
    /// `revocation_cert = "default"`: `RevocationNotifier-cert.crt` of the
    /// last payload (`secure/unzipped/`), as `keylime_tenant --cert` packs it.
    FromPayload,
    /// A file (relative names are under `keylime_dir`).
    File(PathBuf),
}

/// How `POST /v2.x/notifications/revocation` is handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationConfig {
    /// `revocation_cert`.
    pub cert: RevocationCert,
    /// `revocation_actions`: actions run on every verified notification.
    pub actions: Vec<String>,
    /// `revocation_actions_dir`: where the configured actions are found.
    pub actions_dir: PathBuf,
    /// `allow_payload_revocation_actions`: also run the actions the payload's
    /// `action_list` names, from the payload.
    pub allow_payload_actions: bool,
    /// keylet's own: run actions at all (`enable_revocation_actions`, off by
    /// default like payload scripts); off, a verified notification is logged.
    pub enable_actions: bool,
}

impl RevocationConfig {
    /// Reads the revocation options.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the first bad option.
    pub(crate) fn from_values(v: &Values<'_>) -> Result<Self, ConfigError> {
        let cert = match v.string("revocation_cert", "default")?.as_str() {
            "" | "default" => RevocationCert::FromPayload,
            file => RevocationCert::File(v.dir.join(file)),
        };
        let actions = v.parse(
            "revocation_actions",
            "",
            "a comma-separated list of action file names (no '/', not '.' or '..')",
            action_names,
        )?;
        let enable_actions = v.boolean("enable_revocation_actions", false)?;
        if !enable_actions && !actions.is_empty() {
            v.warn(format!(
                "revocation_actions = {:?} is set but keylet runs revocation actions only with \
                 enable_revocation_actions = true",
                actions.join(",")
            ));
        }
        Ok(Self {
            cert,
            actions,
            actions_dir: PathBuf::from(v.string("revocation_actions_dir", "/usr/libexec/keylime")?),
            allow_payload_actions: v.boolean("allow_payload_revocation_actions", true)?,
            enable_actions,
        })
    }
}

impl Default for RevocationConfig {
    fn default() -> Self {
        Self {
            cert: RevocationCert::FromPayload,
            actions: Vec::new(),
            actions_dir: PathBuf::from("/usr/libexec/keylime"),
            allow_payload_actions: true,
            enable_actions: false,
        }
    }
}

/// Splits Keylime's action list: comma-separated names, or the Python list
/// form Keylime's sample `agent.conf` writes (`"[]"`, `"['a', 'b']"`), as the
/// reference agent reads it. Each name must be a plain file name (an action
/// is looked up by name in a directory).
fn action_names(list: &str) -> Option<Vec<String>> {
    let list = list
        .strip_prefix('[')
        .and_then(|l| l.strip_suffix(']'))
        .unwrap_or(list);
    list.split(',')
        .map(|a| a.trim().trim_matches(|c| c == '\'' || c == '"').trim())
        .filter(|a| !a.is_empty())
        .map(|a| is_action_name(a).then(|| a.to_string()))
        .collect()
}

/// Whether `name` can name a file in a directory and nothing else: an
/// action, or one of the payload's files.
#[must_use]
pub fn is_action_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

#[cfg(test)]
mod tests {
    use crate::config::tests::load_conf;

    fn actions(value: &str) -> Vec<String> {
        let text = format!("[agent]\nrevocation_actions = {value}\n");
        load_conf(&text).unwrap().config.revocation.actions
    }

    #[test]
    fn keylimes_list_forms_and_comma_lists_name_the_same_actions() {
        // Keylime's sample agent.conf writes "[]" for no actions.
        assert!(actions("\"[]\"").is_empty());
        assert!(actions("\"\"").is_empty());
        assert_eq!(actions("\"['a.sh', \\\"b\\\"]\""), ["a.sh", "b"]);
        assert_eq!(actions("\"a.sh, b\""), ["a.sh", "b"]);
    }
}
