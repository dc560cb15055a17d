//! Installing an mTLS key and certificate pair so that a crash leaves the
//! previous pair or the new one, never a key with another key's certificate.
//!
//! Two files cannot be replaced in one atomic step, so the new pair is first
//! written whole to `<server_key>.pending` (0600, atomically); then the
//! previous pair is kept as `*.old`, the key and the certificate are
//! replaced (each atomically), and the pending file is removed. Every start
//! calls [`complete_pending`], which finishes an installation that a crash
//! interrupted; doing a step twice does no harm.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::store::{self, StoreError};

pub(crate) const CERT_BEGIN: &str = "-----BEGIN CERTIFICATE-----";

/// `p` with `suffix` appended: `.pending`, where the pair waits while it is
/// installed (next to the key), or `.old`, where the previous key or
/// certificate is kept.
fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Every file an installation writes, for
/// [`store::remove_stale_temporaries`].
#[must_use]
pub(crate) fn files(key: &Path, cert: &Path) -> [PathBuf; 5] {
    [
        key.to_path_buf(),
        cert.to_path_buf(),
        with_suffix(key, ".old"),
        with_suffix(cert, ".old"),
        with_suffix(key, ".pending"),
    ]
}

/// Installs `key_pem` / `cert_pem` over `key_path` / `cert_path`; returns
/// where the previous certificate was kept, if there was one.
///
/// Errors: [`StoreError`] for the file that could not be written; what is
/// already installed stays consistent, and the next start completes it.
pub(crate) fn install(
    key_path: &Path,
    cert_path: &Path,
    key_pem: &str,
    cert_pem: &str,
) -> Result<Option<PathBuf>, StoreError> {
    let newline = if key_pem.ends_with('\n') { "" } else { "\n" };
    // Sized up front: no reallocation leaves an unwiped copy of the key.
    let mut both = Zeroizing::new(String::with_capacity(key_pem.len() + cert_pem.len() + 1));
    both.extend([key_pem, newline, cert_pem]);
    let pending = with_suffix(key_path, ".pending");
    store::write_private(&pending, both.as_bytes())?;
    finish(key_path, cert_path, &pending, key_pem, cert_pem)
}

fn finish(
    key_path: &Path,
    cert_path: &Path,
    pending: &Path,
    key_pem: &str,
    cert_pem: &str,
) -> Result<Option<PathBuf>, StoreError> {
    let current = store::read_private(key_path)?;
    // The key is replaced before the certificate: while it is still the
    // previous one, so is the certificate, and the pair is kept as it is.
    let previous = if current.as_deref().map(Vec::as_slice) == Some(key_pem.as_bytes()) {
        None
    } else {
        keep_previous(key_path, cert_path)?
    };
    store::write_private(key_path, key_pem.as_bytes())?;
    store::write_public(cert_path, cert_pem.as_bytes())?;
    std::fs::remove_file(pending).map_err(StoreError::io("remove", pending))?;
    Ok(previous)
}

/// Copies the current key and certificate (if any) to `*.old`.
fn keep_previous(key: &Path, cert: &Path) -> Result<Option<PathBuf>, StoreError> {
    if let Some(k) = store::read_private(key)? {
        store::write_private(&with_suffix(key, ".old"), &k)?;
    }
    match store::read(cert, false)? {
        Some(text) => {
            store::write_public(&with_suffix(cert, ".old"), &text)?;
            Ok(Some(with_suffix(cert, ".old")))
        }
        None => Ok(None),
    }
}

/// Finishes an installation a crash interrupted; `Ok(true)` if there was one.
///
/// Errors: [`StoreError::Invalid`] if the pending file does not hold a key and a
/// certificate, another [`StoreError`] if a file cannot be read or written.
pub(crate) fn complete_pending(key_path: &Path, cert_path: &Path) -> Result<bool, StoreError> {
    let pending = with_suffix(key_path, ".pending");
    let Some(both) = store::read_private(&pending)? else {
        return Ok(false);
    };
    let invalid = |detail: &str| {
        StoreError::invalid(
            &pending,
            format!(
                "{detail}; it is the interrupted installation of a new mTLS key and \
                 certificate: move it away to keep the current pair"
            ),
        )
    };
    let text = std::str::from_utf8(&both).map_err(|_| invalid("not a PEM file"))?;
    let at = text
        .find(CERT_BEGIN)
        .ok_or_else(|| invalid("holds no certificate"))?;
    let (key_pem, cert_pem) = text.split_at(at);
    if !key_pem.contains("-----BEGIN") {
        return Err(invalid("holds no key"));
    }
    log::warn!(
        "completing the installation of the mTLS key and certificate in {} that was \
         interrupted (keylet or keylet rotate-cert stopped in the middle)",
        pending.display()
    );
    finish(key_path, cert_path, &pending, key_pem, cert_pem)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(dir: &Path) -> (PathBuf, PathBuf) {
        (dir.join("k.pem"), dir.join("c.crt"))
    }

    const K1: &str = "-----BEGIN PRIVATE KEY-----\none\n-----END PRIVATE KEY-----\n";
    const C1: &str = "-----BEGIN CERTIFICATE-----\none\n-----END CERTIFICATE-----\n";
    const K2: &str = "-----BEGIN PRIVATE KEY-----\ntwo\n-----END PRIVATE KEY-----\n";
    const C2: &str = "-----BEGIN CERTIFICATE-----\ntwo\n-----END CERTIFICATE-----\n";

    /// The key, the certificate, and the previous pair kept as `*.old`.
    fn installed(k: &Path, c: &Path) -> Vec<String> {
        let old = |p| with_suffix(p, ".old");
        [k.to_path_buf(), c.to_path_buf(), old(k), old(c)]
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .to_vec()
    }

    #[test]
    fn installs_keeps_the_previous_pair_and_leaves_nothing_pending() {
        let dir = tempfile::tempdir().unwrap();
        let (k, c) = paths(dir.path());
        assert_eq!(install(&k, &c, K1, C1).unwrap(), None);
        assert_eq!(
            install(&k, &c, K2, C2).unwrap(),
            Some(with_suffix(&c, ".old"))
        );
        assert_eq!(installed(&k, &c), [K2, C2, K1, C1]);
        assert!(!with_suffix(&k, ".pending").exists());
        assert!(!complete_pending(&k, &c).unwrap());
    }

    #[test]
    fn an_interrupted_installation_is_completed_at_every_step() {
        // A crash after the pending file, after the key, after the certificate.
        for step in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let (k, c) = paths(dir.path());
            install(&k, &c, K1, C1).unwrap();
            let both = format!("{K2}{C2}");
            store::write_private(&with_suffix(&k, ".pending"), both.as_bytes()).unwrap();
            if step >= 1 {
                keep_previous(&k, &c).unwrap();
                store::write_private(&k, K2.as_bytes()).unwrap();
            }
            if step >= 2 {
                store::write_public(&c, C2.as_bytes()).unwrap();
            }
            assert!(complete_pending(&k, &c).unwrap(), "step {step}");
            assert_eq!(
                installed(&k, &c),
                [K2, C2, K1, C1],
                "step {step}: the previous pair is kept, not the half-installed one"
            );
            assert!(!with_suffix(&k, ".pending").exists());
        }
    }

    #[test]
    fn a_pending_file_without_a_certificate_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (k, c) = paths(dir.path());
        install(&k, &c, K1, C1).unwrap();
        store::write_private(&with_suffix(&k, ".pending"), K2.as_bytes()).unwrap();
        let err = complete_pending(&k, &c).unwrap_err();
        assert!(err.to_string().contains("move it away"), "{err}");
        assert_eq!(installed(&k, &c)[0], K1);
    }
}
