//! Revocation actions, with Keylime's conventions: the configured
//! `revocation_actions` from `revocation_actions_dir`, then the actions the
//! payload's `action_list` names, looked up in `revocation_actions_dir` first
//! and then in the payload (when `allow_payload_revocation_actions`). Each is
//! run with one argument, a file holding the notification's message (JSON),
//! as the user keylet runs as: directly when it is executable, else with the
//! interpreter of its `#!` line, else with `sh` ([`crate::script::command_for`]).

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
    let listed = match payload.map(|dir| std::fs::read_to_string(dir.join(ACTION_LIST))) {
        Some(Ok(text)) => text,
        Some(Err(e)) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(RevocationError::Action(format!(
                "cannot read the payload's {ACTION_LIST}: {e}"
            )));
        }
        _ => String::new(),
    };
    let listed: Vec<&str> = listed
        .split([',', '\n'])
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .collect();
    if let Some(name) = listed.iter().find(|name| !is_action_name(name)) {
        return Err(RevocationError::Action(format!(
            "the payload's {ACTION_LIST} names {name:?}, which is not an action file name"
        )));
    }
    let configured = config.actions.iter().map(|name| (name.as_str(), false));
    let from_payload = listed.into_iter().map(|name| (name, true));
    configured
        .chain(from_payload)
        .map(|(name, from_payload)| {
            let allowed = payload.filter(|_| from_payload && config.allow_payload_actions);
            [Some(config.actions_dir.as_path()), allowed]
                .into_iter()
                .flatten()
                .map(|dir| dir.join(name))
                .find(|path| path.is_file())
                .ok_or_else(|| {
                    RevocationError::Action(format!(
                        "action {name:?} is not in revocation_actions_dir ({}){}",
                        config.actions_dir.display(),
                        match (from_payload, config.allow_payload_actions) {
                            (false, _) => "",
                            (true, false) => " and allow_payload_revocation_actions = false",
                            (true, true) => " nor in the payload",
                        }
                    ))
                })
        })
        .collect()
}

/// Runs `actions` one after the other with the notice's message; stops at
/// the first that fails. Blocking.
///
/// Errors: [`RevocationError::Action`] naming the action and what went wrong.
pub(crate) fn run(
    actions: &[PathBuf],
    notice: &Notice,
    work_dir: &Path,
) -> Result<(), RevocationError> {
    let json = work_dir.join(format!(".revocation-{}.json", std::process::id()));
    crate::store::write_private(&json, notice.msg.as_bytes())
        .map_err(|e| RevocationError::Action(e.to_string()))?;
    let result = actions.iter().try_for_each(|action| {
        // plan() joins each action's file name to its directory.
        let label = action.file_name().unwrap_or_default().to_string_lossy();
        // Operators moving from the reference agent watch for this line.
        log::info!("Executing revocation action {label} ({})", action.display());
        let mut command = crate::script::command_for(action);
        command.arg(&json).current_dir(work_dir);
        crate::script::run(command, &label).map_err(RevocationError::Action)
    });
    let _ = std::fs::remove_file(&json);
    result
}
