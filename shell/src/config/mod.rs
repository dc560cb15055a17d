//! keylet's configuration: Keylime's `[agent]` options, same names and defaults.
//!
//! Bad values fail startup with an error naming the option, the value, where it
//! came from and the accepted form; unknown options draw a warning.

mod features; // options of subsystems a build lacks
mod iak; // TCG device identity (IAK and IDevID)
mod listen; // identity listener for SPIRE, metrics
mod operator; // payload delivery, revocation notifications
mod options;
mod parse;
mod push;
mod source;
mod value;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::secret::Secret;
use keylet_core::alg::{KeyAlg, SignAlg};
use keylet_core::pcr::HashAlg;

pub(crate) use iak::{DeviceIdSettings, DeviceKey};
pub use listen::IdentitySettings;
pub use operator::{PayloadConfig, RevocationCert, RevocationConfig, SecureSize, is_action_name};
pub use push::{AttestationMode, PushSettings, VerifierUrl, parse_verifier_url};
// read_toml: TOML text -> raw values, for the config fuzz target
pub use source::{Environment, Origin, RawConfig, RawValue, Sourced, read_toml};
use value::Values;

/// Why the configuration could not be loaded (the file, or the option with its value, origin and
/// accepted form), and what to do (`keylet doctor` prints it as the fix).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    message: String,
    pub(crate) fix: String,
}

impl ConfigError {
    pub(crate) fn new(message: String, fix: impl Into<String>) -> Self {
        let fix = fix.into();
        Self { message, fix }
    }
}

/// How the agent id is chosen (`uuid`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UuidSetting {
    /// Lowercase hex SHA-256 of the EK public key PEM (keylet's default).
    HashEk,
    /// A random UUID made once and kept in the agent state.
    Generate,
    /// The id as given (checked when the identity is resolved). `environment`
    /// ends here too: `KEYLIME_AGENT_UUID` overrides the option.
    Explicit(String),
    /// `dmidecode`: the SMBIOS system UUID, read when the identity is resolved.
    Dmidecode,
    /// `hostname`: the host name, read when the identity is resolved.
    Hostname,
}

/// Registrar retry timing (`exponential_backoff_*`): the first delay, the
/// retries before giving up, the largest delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    pub(crate) initial: Duration,
    pub(crate) max_retries: u32,
    pub(crate) max_delay: Duration,
}

/// The kernel's measurement lists (relative names are under `/`).
const IMA_ML: &str = "sys/kernel/security/ima/ascii_runtime_measurements";
const BOOT_ML: &str = "sys/kernel/security/tpm0/binary_bios_measurements";

/// The checked configuration. Each field is the option of its name; notes
/// say only what the name does not.
#[derive(Debug, Clone)]
#[allow(clippy::struct_excessive_bools)]
pub struct AgentConfig {
    pub uuid: UuidSetting,
    /// Listen address and port.
    pub(crate) ip: IpAddr,
    pub(crate) port: u16,
    /// Address and port registered for the verifier to poll.
    pub(crate) contact_ip: String,
    pub(crate) contact_port: u16,
    /// Registrar host and plain-HTTP port.
    pub(crate) registrar_ip: String,
    pub(crate) registrar_port: u16,
    /// Register over HTTPS (server-verified against `registrar_tls_ca_cert`) instead of plain HTTP.
    pub(crate) registrar_tls_enabled: bool,
    pub(crate) registrar_tls_port: u16,
    pub(crate) registrar_tls_ca_cert: PathBuf,
    /// Serve HTTPS with client certificates required.
    pub(crate) enable_agent_mtls: bool,
    /// The state directory.
    pub(crate) keylime_dir: PathBuf,
    /// The mTLS server key and certificate, and the payload key (NK). Key
    /// passwords are unsupported unless empty.
    pub(crate) server_key: PathBuf,
    pub(crate) server_key_password: Secret<String>,
    pub(crate) server_cert: PathBuf,
    pub(crate) payload_key: PathBuf,
    pub(crate) payload_key_password: Secret<String>,
    /// CA certificates that client certificates must chain to.
    pub(crate) trusted_client_ca: Vec<PathBuf>,
    /// PCR bank and quote hash, EK and AK key type, quote signature scheme.
    pub tpm_hash_alg: HashAlg,
    pub tpm_encryption_alg: KeyAlg,
    pub(crate) tpm_signing_alg: SignAlg,
    /// A persistent EK handle, or `None` to create the EK from the template.
    pub(crate) ek_handle: Option<u32>,
    /// The owner hierarchy's password (for TPM2_ClockSet).
    pub(crate) tpm_ownerpassword: Secret<Vec<u8>>,
    /// Set an unsafe TPM clock forward (after an unclean TPM reset).
    pub(crate) tpm_clock_repair: bool,
    /// User and group to drop to after opening the TPM and logs.
    pub(crate) run_as: Option<(String, String)>,
    /// The persisted agent state (AK blobs, id).
    pub(crate) agent_data_path: PathBuf,
    /// The IMA runtime measurement list and the measured-boot event log.
    pub(crate) ima_ml_path: PathBuf,
    pub(crate) measuredboot_ml_path: PathBuf,
    pub(crate) backoff: Backoff,
    /// Enabled agent API versions, oldest first.
    pub(crate) api_versions: Vec<(u8, u8)>,
    /// `api_versions` was set: offered as is. Unset: none newer than the
    /// registrar's own version is offered (`ApiVersions::offer`).
    pub(crate) api_versions_pinned: bool,
    /// The TPM: `tpm_device` option, else the `TCTI` variable, else `None` (device default).
    pub(crate) tpm_device: Option<String>,
    /// The local identity listener for SPIRE (`identity_*` options).
    pub(crate) identity: IdentitySettings,
    /// The IAK and IDevID (`enable_iak_idevid`, `iak_*`, `idevid_*`).
    pub(crate) device_id: Option<DeviceIdSettings>,
    /// Where `GET /metrics` is served; `None`: off.
    pub(crate) metrics_listen: Option<std::net::SocketAddr>,
    pub payload: PayloadConfig,
    pub revocation: RevocationConfig,
    /// The attestation model and the push model's verifier settings.
    pub(crate) push: PushSettings,
    /// Landlock self-confinement after start-up (keylet's own option).
    pub(crate) confine: Confine,
}

/// `confine`: `auto` (the default), `true` or `false`.
fn parse_confine(v: &Values<'_>) -> Result<Confine, ConfigError> {
    let auto = v
        .string("confine", "auto")
        .is_ok_and(|s| s.eq_ignore_ascii_case("auto"));
    match v.boolean("confine", true) {
        _ if auto => Ok(Confine::UnlessScripts),
        Ok(true) => Ok(Confine::On),
        Ok(false) => Ok(Confine::Off),
        Err(_) => Err(v.error("confine", "auto, true or false")),
    }
}

/// Landlock self-confinement (`confine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Confine {
    /// `auto`, the default: confined, unless the configuration runs operator scripts
    /// (payload script, revocation actions), which may write anywhere, as
    /// they may under the reference agent.
    UnlessScripts,
    /// `confine = true`: confined, operator scripts too (they may then write only `/tmp`).
    On,
    /// `confine = false`.
    Off,
}

/// A loaded configuration, the files and variables it came from, and the
/// warnings to log (unknown options, ignored sections, ...).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: AgentConfig,
    pub(crate) raw: RawConfig,
    pub warnings: Vec<String>,
}

/// Loads the configuration from the files and environment of this process;
/// fails on an unreadable file, bad TOML or a bad value.
pub(crate) fn load() -> Result<Loaded, ConfigError> {
    load_from(&Environment::process(), Path::new("/"))
}

/// Loads the configuration with files under `root` and the given environment.
///
/// # Errors
///
/// Any [`ConfigError`].
pub fn load_from(env: &Environment, root: &Path) -> Result<Loaded, ConfigError> {
    let raw = source::gather(env, root)?;
    let mut warnings = Vec::new();
    let config = AgentConfig::from_raw(&raw, &mut warnings)?;
    Ok(Loaded {
        config,
        raw,
        warnings,
    })
}

impl AgentConfig {
    /// Checks raw values into a configuration, adding to `warnings`.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the first bad option.
    pub fn from_raw(raw: &RawConfig, warnings: &mut Vec<String>) -> Result<Self, ConfigError> {
        let v = Values::new(raw)?;
        let config = Self::parse(&v)?;
        let (read, parse_warnings) = v.finish();
        options::warn_unknown(raw, &read, warnings);
        warnings.extend(parse_warnings);
        Ok(config)
    }

    fn parse(v: &Values<'_>) -> Result<Self, ConfigError> {
        // the file-format version: known, not needed
        v.known(&["version"]);
        let root = Path::new("/");
        let (tpm_hash_alg, tpm_encryption_alg, tpm_signing_alg) = parse::parse_algorithms(v)?;
        let (api_versions, api_versions_pinned) = parse::parse_api_versions(v)?;
        let millis = |option, default, max| {
            let ms = v.integer(option, default, 0..=max)?;
            Ok::<_, ConfigError>(Duration::from_millis(ms))
        };
        let retries = v.integer("exponential_backoff_max_retries", 5, 0..=1_000_000)?;
        let config = Self {
            uuid: parse::parse_uuid(v)?,
            ip: parse::parse_ip(v)?,
            port: v.port("port", 9002)?,
            contact_ip: v.string("contact_ip", "127.0.0.1")?,
            contact_port: v.port("contact_port", 9002)?,
            registrar_ip: v.string("registrar_ip", "127.0.0.1")?,
            registrar_port: v.port("registrar_port", 8890)?,
            registrar_tls_enabled: v.boolean("registrar_tls_enabled", false)?,
            registrar_tls_port: v.port("registrar_tls_port", 8891)?,
            registrar_tls_ca_cert: v.path("registrar_tls_ca_cert", &v.dir, "cv_ca/cacert.crt")?,
            enable_agent_mtls: v.boolean("enable_agent_mtls", true)?,
            server_key: v.path("server_key", &v.dir, "server-private.pem")?,
            server_key_password: Secret::new(v.string("server_key_password", "")?),
            server_cert: v.path("server_cert", &v.dir, "server-cert.crt")?,
            payload_key: v.path("payload_key", &v.dir, "payload-private.pem")?,
            payload_key_password: Secret::new(v.string("payload_key_password", "")?),
            trusted_client_ca: v.path_list("trusted_client_ca", "cv_ca/cacert.crt")?,
            tpm_hash_alg,
            tpm_encryption_alg,
            tpm_signing_alg,
            ek_handle: parse::parse_ek_handle(v)?,
            tpm_ownerpassword: parse::parse_password(v, "tpm_ownerpassword")?,
            tpm_clock_repair: v.boolean("tpm_clock_repair", true)?,
            run_as: parse::parse_run_as(v)?,
            agent_data_path: v.path("agent_data_path", &v.dir, "keylet-agent-state.bin")?,
            ima_ml_path: v.path("ima_ml_path", root, IMA_ML)?,
            measuredboot_ml_path: v.path("measuredboot_ml_path", root, BOOT_ML)?,
            backoff: Backoff {
                initial: millis("exponential_backoff_initial_delay", 10_000, 3_600_000)?,
                max_retries: u32::try_from(retries).unwrap_or(u32::MAX),
                max_delay: millis("exponential_backoff_max_delay", 300_000, 86_400_000)?,
            },
            api_versions,
            api_versions_pinned,
            tpm_device: Some(v.string("tpm_device", "")?).filter(|d| !d.is_empty()),
            identity: listen::parse_identity(v)?,
            device_id: iak::parse(v)?,
            metrics_listen: listen::parse_metrics_listen(v)?,
            payload: PayloadConfig::from_values(v)?,
            revocation: RevocationConfig::from_values(v)?,
            push: push::parse(v)?,
            confine: parse_confine(v)?,
            keylime_dir: v.dir.clone(),
        };
        features::refuse_missing(v, &config)?;
        Ok(config)
    }
}

#[cfg(test)]
pub(crate) mod tests; // also the loading helpers of confine's tests
