//! Check: the configuration loads, and from which files and variables.

use std::path::Path;

use super::report::{Report, fail, warn};
use crate::config::{self, Environment, Loaded};

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
    let vars = &loaded.raw.env_vars;
    if vars.is_empty() {
        format!("{files}; no KEYLIME_AGENT_* variables")
    } else {
        format!("{files}; environment {}", vars.join(", "))
    }
}

/// Loads the configuration as `keylet run` would; the check line says what
/// was read, and the configuration is returned when it is usable.
pub(crate) fn check(report: &mut Report, env: &Environment, root: &Path) -> Option<Loaded> {
    match config::load_from(env, root) {
        Ok(loaded) => {
            report.add("config", Ok(format!("parsed {}", sources(&loaded))));
            for w in &loaded.warnings {
                let fix = "remove or rename the option (keylet ignores it)";
                report.add("config.option", Err(warn(w.clone(), fix)));
            }
            Some(loaded)
        }
        Err(e) => {
            report.add("config", Err(fail(e.to_string(), e.fix)));
            None
        }
    }
}
