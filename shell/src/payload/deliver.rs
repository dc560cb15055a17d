//! Delivering K and the payload into `<secure>/unzipped/` (the reference
//! agent's layout). The payload is decrypted before anything old is removed;
//! K (`enc_keyname`), the plaintext (`dec_payload_file`, 0600) and, with
//! `extract_payload_zip`, the unpacked zip go to a 0700 staging directory
//! `.unzipped.tmp-<pid>` that replaces `unzipped/` in one atomic exchange: a
//! crash leaves the previous delivery or the new one, never half of it (a
//! killed keylet's staging directory is removed at the next start,
//! [`crate::store::remove_stale_temporaries`]). With `enable_payload_script`,
//! `payload_script` (if present) then runs as `sh <script>` in `unzipped/`.

use std::path::Path;
use std::process::Command;

use zeroize::Zeroizing;

use super::{Delivered, PayloadError, SymmetricKey, cipher, unzip};
use crate::config::PayloadConfig;
use crate::store::{self, StoreError};

/// Delivers `k` and the decrypted `payload` into `secure`.
///
/// # Errors
///
/// A [`PayloadError`] for the step that failed; the previous delivery, if
/// any, stays in `unzipped/` as it was.
pub fn deliver(
    secure: &Path,
    config: &PayloadConfig,
    k: &SymmetricKey,
    payload: Option<&[u8]>,
) -> Result<Delivered, PayloadError> {
    let plaintext = payload.map(|p| cipher::decrypt(k, p)).transpose()?;
    let dir = secure.join("unzipped");
    let staging = store::temporary(&dir);
    remove_dir(&staging).map_err(StoreError::io("write", &staging))?;
    unzip::make_dirs(&staging)?;
    let staged = stage(&staging, &dir, config, k, plaintext.as_ref());
    // Staging now holds the previous delivery, or a failed one.
    let _ = remove_dir(&staging);
    let files = staged?;
    let script_exit = run_script(&dir, config)?;
    Ok(Delivered {
        dir,
        files,
        script_exit,
    })
}

/// Fills `staging`, which then takes the place of `dir`; returns how many
/// files were written.
fn stage(
    staging: &Path,
    dir: &Path,
    config: &PayloadConfig,
    k: &SymmetricKey,
    plaintext: Option<&Zeroizing<Vec<u8>>>,
) -> Result<usize, PayloadError> {
    store::write_private(&staging.join(&config.enc_keyname), k.as_bytes())?;
    let mut files = 1;
    if let Some(plain) = plaintext {
        let path = staging.join(&config.dec_payload_file);
        store::write_private(&path, plain)?;
        log::info!(
            "decrypted payload ({} bytes) written to {}",
            plain.len(),
            config.dec_payload_file
        );
        files += 1;
        if config.extract_payload_zip {
            if unzip::looks_like_zip(plain) {
                files += unzip::extract(plain, staging, config.secure_size.bytes)?;
                log::info!("unpacked the zip payload");
            } else {
                log::info!(
                    "the payload is not a zip archive; it is kept as {} only",
                    config.dec_payload_file
                );
            }
        }
    }
    replace(staging, dir).map_err(StoreError::io("write", dir))?;
    Ok(files)
}

/// Puts `staging` in the place of `dir` atomically (RENAME_EXCHANGE); the
/// previous `dir`, if any, ends up at `staging`.
fn replace(staging: &Path, dir: &Path) -> std::io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    use rustix::io::Errno;
    // rustix, not nix: nix offers renameat2 on glibc only, and keylet ships
    // static musl binaries.
    match renameat_with(CWD, staging, CWD, dir, RenameFlags::EXCHANGE) {
        Ok(()) => Ok(()),
        Err(Errno::NOENT) => std::fs::rename(staging, dir),
        Err(Errno::INVAL) => {
            // A filesystem without RENAME_EXCHANGE: not atomic, but never mixed.
            remove_dir(dir)?;
            std::fs::rename(staging, dir)
        }
        Err(e) => Err(e.into()),
    }
}

fn remove_dir(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn run_script(dir: &Path, config: &PayloadConfig) -> Result<Option<i32>, PayloadError> {
    let script = dir.join(&config.payload_script);
    if config.payload_script.is_empty() || !script.is_file() {
        return Ok(None);
    }
    if !config.enable_payload_script {
        log::warn!(
            "the payload contains {} but it is not run: set enable_payload_script = true to run \
             payload scripts",
            config.payload_script
        );
        return Ok(None);
    }
    log::info!("running the payload script {}", script.display());
    let mut command = Command::new("sh");
    command.arg(&script).current_dir(dir);
    crate::script::run(command, &config.payload_script)
        .map(|()| Some(0))
        .map_err(PayloadError::Script)
}
