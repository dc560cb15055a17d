//! The options of the payload subsystem (the `payload` cargo feature): payload
//! delivery, where delivered secrets go and what keylet does with them
//! (keylime-protocol §6.3); and revocation notifications, which certificate
//! signs the verifier's notifications and which actions run when one arrives.

use std::path::PathBuf;

use super::ConfigError;
use super::value::Values;

/// The largest `secure_size` accepted: payloads are held in memory while they are decrypted.
const MAX_SECURE_SIZE: u64 = 256 * 1024 * 1024;

/// How payloads delivered with `POST /keys/ukey` are handled; each field is the option of its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadConfig {
    /// File names in the secure directory: the derived key K, the decrypted payload.
    pub enc_keyname: String,
    pub dec_payload_file: String,
    /// Size of the secure tmpfs.
    pub secure_size: SecureSize,
    /// Unpack a zip payload into the secure directory.
    pub extract_payload_zip: bool,
    /// The script run from the unpacked payload, if enabled.
    pub payload_script: String,
    /// Accept payloads even when mTLS is off.
    pub enable_insecure_payload: bool,
    /// keylet's own: run `payload_script` at all (off by default).
    pub enable_payload_script: bool,
}

/// A tmpfs size as Keylime writes it (`1m`, `512k`, `1048576`): the text,
/// passed to tmpfs as `size=`, and the size in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecureSize {
    pub text: String,
    pub bytes: u64,
}

impl PayloadConfig {
    /// Reads the payload options; fails naming the first bad one.
    pub(crate) fn from_values(v: &Values<'_>) -> Result<Self, ConfigError> {
        let script = v.parse("payload_script", "autorun.sh", FILE_NAME, |s| {
            (s.is_empty() || is_action_name(s)).then(|| s.to_string())
        })?;
        let enable_payload_script = v.boolean("enable_payload_script", false)?;
        if !enable_payload_script && !script.is_empty() && script != "autorun.sh" {
            v.warn(format!(
                "payload_script = {script:?} is set but keylet runs payload scripts only with \
                 enable_payload_script = true"
            ));
        }
        let file_name = |option, default| {
            v.parse(option, default, FILE_NAME, |s| {
                is_action_name(s).then(|| s.to_string())
            })
        };
        Ok(Self {
            enc_keyname: file_name("enc_keyname", "derived_tci_key")?,
            dec_payload_file: file_name("dec_payload_file", "decrypted_payload")?,
            secure_size: parse_size(v)?,
            extract_payload_zip: v.boolean("extract_payload_zip", true)?,
            payload_script: script,
            enable_insecure_payload: v.boolean("enable_insecure_payload", false)?,
            enable_payload_script,
        })
    }
}

/// The form of the file name options (no directory part, not `.` or `..`).
const FILE_NAME: &str = "a plain file name inside the secure directory (no '/')";

fn parse_size(v: &Values<'_>) -> Result<SecureSize, ConfigError> {
    const FORM: &str =
        "a size such as 1m, 512k or 1048576 (bytes; k, m, g suffixes), from 4k to 256m";
    v.parse("secure_size", "1m", FORM, |text| {
        let lower = text.to_ascii_lowercase();
        let (digits, scale) = [("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30)]
            .into_iter()
            .find_map(|(unit, scale)| Some((lower.strip_suffix(unit)?, scale)))
            .unwrap_or((&lower, 1));
        // digits only: u64's parser would also take a sign
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let bytes = digits.parse::<u64>().ok()?.checked_mul(scale)?;
        let text = text.to_string();
        (4096..=MAX_SECURE_SIZE)
            .contains(&bytes)
            .then_some(SecureSize { text, bytes })
    })
}

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
    /// `revocation_actions`, run on every verified notification from `revocation_actions_dir`.
    pub actions: Vec<String>,
    pub actions_dir: PathBuf,
    /// `allow_payload_revocation_actions`: also run the actions the payload's
    /// `action_list` names, from the payload.
    pub allow_payload_actions: bool,
    /// keylet's own: run actions at all (`enable_revocation_actions`, off by
    /// default like payload scripts); off, a verified notification is logged.
    pub enable_actions: bool,
}

impl RevocationConfig {
    /// Reads the revocation options; fails naming the first bad one.
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

/// Splits Keylime's action list: comma-separated names, or the Python list form Keylime's sample
/// `agent.conf` writes (`"[]"`, `"['a', 'b']"`), as the reference agent reads it. Each name must be
/// a plain file name (an action is looked up by name in a directory).
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
