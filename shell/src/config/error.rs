//! Configuration errors.

use std::path::PathBuf;

use super::source::Origin;

/// Why the configuration could not be loaded.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// `KEYLIME_AGENT_CONFIG` names a file that does not exist.
    MissingFile {
        /// The path given.
        path: PathBuf,
    },
    /// A config file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A config file is not valid TOML.
    Toml {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// An option has a value keylet cannot use.
    Invalid {
        /// The option name.
        option: String,
        /// The value as written.
        value: String,
        /// Where it came from.
        origin: Origin,
        /// What would be accepted.
        expected: String,
    },
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MissingFile { path } => write!(
                f,
                "KEYLIME_AGENT_CONFIG names {}, which does not exist; point it at the agent config file or unset it",
                path.display()
            ),
            Self::Read { path, source } => {
                write!(f, "cannot read config file {}: {source}", path.display())
            }
            Self::Toml { path, message } => write!(
                f,
                "config file {} is not valid TOML: {}",
                path.display(),
                message.trim_end()
            ),
            Self::Invalid {
                option,
                value,
                origin,
                expected,
            } => write!(
                f,
                "option {option} = {value} (from {origin}) is not valid: expected {expected}"
            ),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}
