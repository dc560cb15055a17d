//! The persisted agent state: the AK blobs and the agent id, in `postcard`.
//!
//! The registrar refuses (403) a known agent id that comes back with another
//! AK, so the AK made at first start is kept and reloaded on every later
//! start, under the same EK.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::{self, StoreError};

/// Format version of the state file: the `format` of every state keylet makes.
pub(crate) const FORMAT: u8 = 1;

/// What keylet remembers between starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentState {
    pub(crate) format: u8,
    pub agent_id: String,
    /// How the id was chosen (`hash_ek`, `generate`, `explicit`).
    pub(crate) id_source: String,
    /// The TPM2B_PUBLIC of the EK the AK was created under.
    pub(crate) ek_public: Vec<u8>,
    /// The AK's `tpm_encryption_alg` and `tpm_hash_alg` (Keylime names).
    pub(crate) key_alg: String,
    pub(crate) hash_alg: String,
    /// The AK's TPM2B_PUBLIC, and its TPM2B_PRIVATE (wrapped by the TPM;
    /// useless on another TPM).
    pub(crate) ak_public: Vec<u8>,
    pub(crate) ak_private: Vec<u8>,
}

impl AgentState {
    /// Loads the state; `Ok(None)` if there is none yet.
    ///
    /// Errors: [`StoreError`] if the file is unreadable, too open, or not a state
    /// file ([`StoreError::Invalid`], saying what to do).
    pub(crate) fn load(path: &Path) -> Result<Option<Self>, StoreError> {
        let corrupt = |detail: String| {
            StoreError::invalid(
                path,
                format!(
                    "the agent state cannot be read ({detail}); it was left untouched. If it is \
                     damaged, move it away to start with a new AK, and delete this agent at the \
                     registrar first (keylime_tenant -c regdelete -u <id>) because the registrar \
                     refuses a known id with a new AK"
                ),
            )
        };
        let Some(bytes) = store::read_private(path)? else {
            return Ok(None);
        };
        let state: Self = postcard::from_bytes(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if state.format != FORMAT {
            return Err(corrupt(format!("format {} is not {FORMAT}", state.format)));
        }
        Ok(Some(state))
    }

    /// Saves the state atomically (0600).
    ///
    /// Errors: [`StoreError`].
    pub(crate) fn save(&self, path: &Path) -> Result<(), StoreError> {
        let bytes =
            postcard::to_stdvec(self).map_err(|e| StoreError::invalid(path, e.to_string()))?;
        store::write_private(path, &bytes)
    }
}

/// Removes what a keylet killed while writing its files left behind
/// (temporaries of the state, the payload key and the mTLS files); a start
/// calls it before it reads any of them. Returns how many were removed.
pub(crate) fn remove_stale_temporaries(c: &crate::config::AgentConfig) -> usize {
    let mtls = crate::keys::mtls_files(&c.server_key, &c.server_cert);
    let lease = c.keylime_dir.join(crate::agent::clock::FILE_NAME);
    let mut targets: Vec<&Path> = vec![&c.agent_data_path, &c.payload_key, &lease];
    targets.extend(mtls.iter().map(PathBuf::as_path));
    store::remove_stale_temporaries(&targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_a_corrupt_file_is_an_error_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state");
        assert!(AgentState::load(&p).unwrap().is_none());
        let state = AgentState {
            format: FORMAT,
            agent_id: "id".into(),
            id_source: "hash_ek".into(),
            ek_public: vec![1, 2],
            key_alg: "rsa2048".into(),
            hash_alg: "sha256".into(),
            ak_public: vec![3; 10],
            ak_private: vec![4; 20],
        };
        state.save(&p).unwrap();
        assert_eq!(AgentState::load(&p).unwrap().unwrap(), state);
        store::write_private(&p, b"{\"not\": \"postcard\"}").unwrap();
        let err = AgentState::load(&p).unwrap_err();
        assert!(matches!(err, StoreError::Invalid(..)), "{err}");
        assert!(err.to_string().contains("regdelete"), "{err}");
        assert_eq!(std::fs::read(&p).unwrap(), b"{\"not\": \"postcard\"}");
    }
}
