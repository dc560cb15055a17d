//! Delivering K and the payload into the secure directory, in the layout of
//! the reference agent: everything in `<secure>/unzipped/`, wiped first.
//!
//! 1. the payload is decrypted (before anything old is removed);
//! 2. `unzipped/` is recreated (mode 0700);
//! 3. K goes to `<enc_keyname>`, the plaintext to `<dec_payload_file>` (0600);
//! 4. with `extract_payload_zip`, a zip plaintext is unpacked next to them;
//! 5. with `enable_payload_script`, `payload_script` (if the payload has it)
//!    runs as `sh <script>` in `unzipped/`, as the user keylet runs as.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{PayloadError, SymmetricKey, cipher, unzip};
use crate::config::PayloadConfig;
use crate::store;

/// What a delivery wrote and ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// `<secure>/unzipped`.
    pub dir: PathBuf,
    /// Files written, K first.
    pub files: Vec<PathBuf>,
    /// The payload script's exit code, if it ran.
    pub script_exit: Option<i32>,
}

/// Delivers `k` and the decrypted `payload` into `secure`.
///
/// # Errors
///
/// A [`PayloadError`] for the step that failed; files written before it stay.
pub fn deliver(
    secure: &Path,
    config: &PayloadConfig,
    k: &SymmetricKey,
    payload: Option<&[u8]>,
) -> Result<Delivered, PayloadError> {
    let plaintext = payload.map(|p| cipher::decrypt(k, p)).transpose()?;
    let dir = secure.join("unzipped");
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PayloadError::Write { path, source }
    };
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(write_err(&dir)(e)),
    }
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(&dir)
        .map_err(write_err(&dir))?;
    let key_path = dir.join(&config.enc_keyname);
    store::write_private(&key_path, k.as_bytes()).map_err(PayloadError::Store)?;
    let mut files = vec![key_path];
    if let Some(plain) = &plaintext {
        let path = dir.join(&config.dec_payload_file);
        store::write_private(&path, plain).map_err(PayloadError::Store)?;
        log::info!(
            "decrypted payload ({} bytes) written to {}",
            plain.len(),
            path.display()
        );
        files.push(path);
        if config.extract_payload_zip {
            if unzip::looks_like_zip(plain) {
                files.extend(unzip::extract(plain, &dir, config.secure_size.bytes)?);
                log::info!("unpacked the zip payload into {}", dir.display());
            } else {
                log::info!(
                    "the payload is not a zip archive; it is kept as {} only",
                    config.dec_payload_file
                );
            }
        }
    }
    let script_exit = run_script(&dir, config)?;
    Ok(Delivered {
        dir,
        files,
        script_exit,
    })
}

fn run_script(dir: &Path, config: &PayloadConfig) -> Result<Option<i32>, PayloadError> {
    if config.payload_script.is_empty() {
        return Ok(None);
    }
    let script = dir.join(&config.payload_script);
    if !script.is_file() {
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
    let output = Command::new("sh")
        .arg(&script)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| PayloadError::Script(format!("cannot start sh {}: {e}", script.display())))?;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        log::info!("{}: {line}", config.payload_script);
    }
    for line in String::from_utf8_lossy(&output.stderr).lines() {
        log::warn!("{}: {line}", config.payload_script);
    }
    match output.status.code() {
        Some(0) => Ok(Some(0)),
        Some(code) => Err(PayloadError::Script(format!(
            "{} exited with status {code}",
            script.display()
        ))),
        None => Err(PayloadError::Script(format!(
            "{} was killed by a signal",
            script.display()
        ))),
    }
}
