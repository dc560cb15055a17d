//! Check: the configuration loads, and from which files and variables.

use std::path::Path;

use super::report::{Report, fail, warn};
use crate::config::{self, ConfigError, Environment, Loaded, Origin};

/// What was read, as one phrase: the files and the environment variables.
fn sources(loaded: &Loaded) -> String {
    let files: Vec<String> = loaded
        .raw
        .files
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let files = if files.is_empty() {
        "no config file (built-in defaults)".to_string()
    } else {
        format!("files {}", files.join(", "))
    };
    let mut vars = loaded.raw.env_vars.clone();
    if let Some((_, Origin::Env(name))) = &loaded.config.tpm_device
        && !vars.contains(name)
    {
        vars.push(name.clone());
    }
    if vars.is_empty() {
        format!("{files}; no KEYLIME_AGENT_* variables")
    } else {
        format!("{files}; environment {}", vars.join(", "))
    }
}

/// Loads the configuration as `keylet run` would; the check line says what
/// was read, and the configuration is returned when it is usable.
pub(crate) fn check(report: &mut Report, env: &Environment, root: &Path) -> Option<Loaded> {
    let e = match config::load_from(env, root) {
        Ok(loaded) => {
            report.add("config", Ok(format!("parsed {}", sources(&loaded))));
            for w in &loaded.warnings {
                let fix = "remove or rename the option (keylet ignores it)";
                report.add("config.option", Err(warn(w.clone(), fix)));
            }
            return Some(loaded);
        }
        Err(e) => e,
    };
    let fix = match &e {
        ConfigError::Invalid { origin, .. } => format!("correct the value in {origin}"),
        ConfigError::Toml { path, .. } => format!("correct the TOML in {}", path.display()),
        ConfigError::Read { path, .. } => format!(
            "make {} readable by the user running keylet, or remove it",
            path.display()
        ),
        _ => "point KEYLIME_AGENT_CONFIG at the agent config file, or unset it".into(),
    };
    report.add("config", Err(fail(e.to_string(), fix)));
    None
}
