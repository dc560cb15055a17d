//! Revocation actions, with Keylime's conventions: the configured
//! `revocation_actions` from `revocation_actions_dir`, then the actions the
//! payload's `action_list` names, looked up in `revocation_actions_dir` first
//! and then in the payload (when `allow_payload_revocation_actions`). Each is
//! run with one argument, a file holding the notification's message (JSON),
//! as the user keylet runs as: directly when it is executable, else with the
//! interpreter of its `#!` line, else with `sh` ([`crate::script::command_for`]).

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use super::{Notice, RevocationError};
use crate::config::{RevocationConfig, is_action_name};

/// The payload file naming revocation actions.
pub(crate) const ACTION_LIST: &str = "action_list";

/// The actions to run, in order, with where each was found.
///
/// # Errors
///
/// [`RevocationError::Action`] for an action that is named but not found.
pub fn plan(
    config: &RevocationConfig,
    payload: Option<&Path>,
) -> Result<Vec<PathBuf>, RevocationError> {
    let mut names: Vec<(String, bool)> =
        config.actions.iter().map(|a| (a.clone(), false)).collect();
    if let Some(dir) = payload {
        match std::fs::read_to_string(dir.join(ACTION_LIST)) {
            Ok(text) => {
                for name in text
                    .split([',', '\n'])
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                {
                    if !is_action_name(name) {
                        return Err(RevocationError::Action(format!(
                            "the payload's {ACTION_LIST} names {name:?}, which is not an action \
                             file name"
                        )));
                    }
                    names.push((name.to_string(), true));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(RevocationError::Action(format!(
                    "cannot read the payload's {ACTION_LIST}: {e}"
                )));
            }
        }
    }
    names
        .into_iter()
        .map(|(name, from_payload)| {
            let installed = config.actions_dir.join(&name);
            if installed.is_file() {
                return Ok(installed);
            }
            match payload {
                Some(dir)
                    if from_payload
                        && config.allow_payload_actions
                        && dir.join(&name).is_file() =>
                {
                    Ok(dir.join(&name))
                }
                _ => Err(RevocationError::Action(format!(
                    "action {name:?} is not in revocation_actions_dir ({}){}",
                    config.actions_dir.display(),
                    if from_payload && !config.allow_payload_actions {
                        " and allow_payload_revocation_actions = false"
                    } else if from_payload {
                        " nor in the payload"
                    } else {
                        ""
                    }
                ))),
            }
        })
        .collect()
}

/// Runs `actions` one after the other with the notice's message; stops at
/// the first that fails. Blocking.
///
/// # Errors
///
/// [`RevocationError::Action`] naming the action and what went wrong.
pub(crate) fn run(
    actions: &[PathBuf],
    notice: &Notice,
    work_dir: &Path,
) -> Result<(), RevocationError> {
    let json = work_dir.join(format!(".revocation-{}.json", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&json)?;
        f.write_all(notice.msg.as_bytes())?;
        f.sync_all()
    };
    write()
        .map_err(|e| RevocationError::Action(format!("cannot write {}: {e}", json.display())))?;
    let result = actions.iter().try_for_each(|action| {
        let label = action.file_name().map_or_else(
            || action.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        // Operators moving from the reference agent watch for this line.
        log::info!("Executing revocation action {label} ({})", action.display());
        let mut command = crate::script::command_for(action);
        command.arg(&json).current_dir(work_dir);
        crate::script::run(command, &label, crate::script::SCRIPT_TIMEOUT)
            .map_err(RevocationError::Action)
    });
    let _ = std::fs::remove_file(&json);
    result
}
