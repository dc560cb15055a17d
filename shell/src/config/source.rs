//! Where option values come from: config files and environment variables.
//!
//! Load order (later wins), as Keylime agents use it: built-in defaults,
//! `/usr/etc/keylime/agent.conf`, `/usr/etc/keylime/agent.conf.d/*`, `/etc/keylime/agent.conf`,
//! `/etc/keylime/agent.conf.d/*`, then `KEYLIME_AGENT_<OPTION>` environment variables.
//! `KEYLIME_AGENT_CONFIG=<file>` replaces every file source with that one file, which must exist.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use toml::de::DeValue;

use super::ConfigError;

/// Where one value came from, for error messages and `keylet doctor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File(PathBuf),
    Env(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("the built-in default"),
            Self::File(p) => write!(f, "{}", p.display()),
            Self::Env(v) => write!(f, "environment variable {v}"),
        }
    }
}

/// One raw value before it is checked: a TOML scalar or an environment
/// string; `Other` names a TOML kind no option accepts (array, table, ...).
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    Str(String),
    Int(i64),
    Bool(bool),
    Other(&'static str),
}

impl fmt::Display for RawValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Str(s) => write!(f, "{s:?}"),
            Self::Int(i) => write!(f, "{i}"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Other(kind) => write!(f, "a TOML {kind}"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Sourced {
    pub(crate) value: RawValue,
    pub(crate) origin: Origin,
}

/// The last value seen of each option, the files read in order, the environment variables used, and
/// the sections other than `[agent]` that were ignored (with their file).
#[derive(Debug, Default, Clone)]
pub struct RawConfig {
    pub(crate) values: BTreeMap<String, Sourced>,
    pub(crate) files: Vec<PathBuf>,
    pub(crate) env_vars: Vec<String>,
    pub(crate) ignored_sections: Vec<(PathBuf, String)>,
}

/// The environment variables the configuration reads: the process's, or a
/// fixed set for tests and tools that must not read the process's own.
#[derive(Debug, Clone, Default)]
pub struct Environment(pub(super) Vec<(String, String)>);

impl Environment {
    #[must_use]
    pub(crate) fn process() -> Self {
        // Not env::vars(), which panics on a value that is not UTF-8: a lossy copy
        // fails the option's own check, which names the variable.
        let text = |s: std::ffi::OsString| s.to_string_lossy().into_owned();
        Self(
            std::env::vars_os()
                .map(|(n, v)| (text(n), text(v)))
                .collect(),
        )
    }

    /// The non-empty value of variable `name`.
    pub(crate) fn var(&self, name: &str) -> Option<&str> {
        let value = self.0.iter().find(|(n, _)| n == name)?.1.as_str();
        Some(value).filter(|v| !v.is_empty())
    }
}

/// The file sources in load order; fails if `KEYLIME_AGENT_CONFIG` names a
/// file that does not exist.
fn file_sources(env: &Environment, root: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    if let Some(explicit) = env.var("KEYLIME_AGENT_CONFIG") {
        let path = PathBuf::from(explicit);
        if !path.is_file() {
            return Err(ConfigError::new(
                format!(
                    "KEYLIME_AGENT_CONFIG names {}, which does not exist; point it at the agent config file or unset it",
                    path.display()
                ),
                "point KEYLIME_AGENT_CONFIG at the agent config file, or unset it",
            ));
        }
        return Ok(vec![path]);
    }
    let mut out = Vec::new();
    for base in ["usr/etc/keylime", "etc/keylime"] {
        let dir = root.join(base);
        let main = dir.join("agent.conf");
        if main.is_file() {
            out.push(main);
        }
        if let Ok(entries) = std::fs::read_dir(dir.join("agent.conf.d")) {
            let mut snippets: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            snippets.sort();
            out.extend(snippets);
        }
    }
    Ok(out)
}

/// Reads the `[agent]` section of TOML `text` (the contents of the file at
/// `path`, which only names it in errors and origins) into `raw`.
///
/// # Errors
///
/// A [`ConfigError`] naming `path`.
pub fn read_toml(text: &str, path: &Path, raw: &mut RawConfig) -> Result<(), ConfigError> {
    let file = path.display();
    let invalid = |message: &str| {
        let message = message.trim_end();
        let message = format!("config file {file} is not valid TOML: {message}");
        ConfigError::new(message, format!("correct the TOML in {file}"))
    };
    let table = toml::de::DeTable::parse(text).map_err(|e| invalid(&e.to_string()))?;
    raw.files.push(path.to_path_buf());
    for (section, body) in table.into_inner() {
        let section = section.into_inner().into_owned();
        if section != "agent" {
            raw.ignored_sections.push((path.to_path_buf(), section));
            continue;
        }
        let DeValue::Table(options) = body.into_inner() else {
            return Err(invalid("`agent` must be a section ([agent])"));
        };
        for (name, value) in options {
            let name = name.into_inner().into_owned();
            let value = match value.into_inner() {
                DeValue::String(s) => RawValue::Str(s.into_owned()),
                DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                    .map_or(RawValue::Other("integer out of range"), RawValue::Int),
                DeValue::Boolean(b) => RawValue::Bool(b),
                // float, datetime, array, table
                other => RawValue::Other(other.type_str()),
            };
            let origin = Origin::File(path.to_path_buf());
            raw.values.insert(name, Sourced { value, origin });
        }
    }
    Ok(())
}

/// Gathers every raw value: files under `root` (normally `/`), then the `KEYLIME_AGENT_<OPTION>`
/// variables (and `KEYLIME_DIR`, and `TCTI`); fails on a missing, unreadable or invalid file.
pub(crate) fn gather(env: &Environment, root: &Path) -> Result<RawConfig, ConfigError> {
    let mut raw = RawConfig::default();
    for path in file_sources(env, root)? {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            let file = path.display();
            let fix = format!("make {file} readable by the user running keylet, or remove it");
            ConfigError::new(format!("cannot read config file {file}: {e}"), fix)
        })?;
        read_toml(&text, &path, &mut raw)?;
    }
    let mut vars = env.0.clone();
    vars.sort();
    for (name, value) in &vars {
        if let Some(option) = name
            .strip_prefix("KEYLIME_AGENT_")
            .filter(|o| *o != "CONFIG")
        {
            set_env(&mut raw, &option.to_ascii_lowercase(), name, value);
        }
    }
    // KEYLIME_DIR (non-empty) wins over KEYLIME_AGENT_KEYLIME_DIR.
    if let Some(dir) = env.var("KEYLIME_DIR") {
        set_env(&mut raw, "keylime_dir", "KEYLIME_DIR", dir);
    }
    // tpm2-tss's TCTI variable stands in for an unset or empty tpm_device.
    let device_unset = raw
        .values
        .get("tpm_device")
        .is_none_or(|s| matches!(&s.value, RawValue::Str(d) if d.trim().is_empty()));
    if let Some(tcti) = env.var("TCTI").filter(|_| device_unset) {
        set_env(&mut raw, "tpm_device", "TCTI", tcti);
    }
    Ok(raw)
}

fn set_env(raw: &mut RawConfig, option: &str, var: &str, value: &str) {
    raw.env_vars.push(var.to_owned());
    let (value, origin) = (RawValue::Str(value.to_owned()), Origin::Env(var.to_owned()));
    raw.values
        .insert(option.to_owned(), Sourced { value, origin });
}
