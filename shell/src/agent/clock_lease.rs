//! The clock lease: a TPM clock value, persisted in `keylime_dir`, above
//! every clock value keylet's quotes may have reported.
//!
//! After an unclean TPM reset the clock restarts from the value the TPM last
//! saved, and swtpm saves it only at an orderly shutdown: two power losses in
//! a row would let the clock repair set it to a value the verifier has
//! already seen, and the verifier fails that quote for good. So keylet keeps
//! a lease at least [`CLOCK_LEASE_MS`] / 2 ahead of the TPM clock, renewed
//! (one TPM2_ReadClock and one small atomic file write) when half of it may
//! have run. At start and after a TPM reconnect keylet sets the clock to at
//! least the lease, also when the TPM calls its clock safe: swtpm stopped
//! with QEMU restarts an old clock value and reports it safe
//! (see [`keylet_core::tpm::clock`]).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use keylet_core::tpm::clock::{CLOCK_LEASE_MS, renewed_lease};

use crate::store;

/// The lease file's name in `keylime_dir`.
pub(crate) const FILE_NAME: &str = "keylet-clock-lease";

/// The persisted clock lease and when it was last renewed.
#[derive(Debug)]
pub(crate) struct ClockLease {
    path: PathBuf,
    value: u64,
    renewed: Option<Instant>,
}

impl ClockLease {
    /// Reads the lease at `path` (none yet: 0). An unreadable or malformed
    /// file is logged and counts as no lease: the next renewal rewrites it.
    #[must_use]
    pub(crate) fn load(path: PathBuf) -> Self {
        let value = match store::read_private(&path) {
            Ok(Some(bytes)) => match std::str::from_utf8(&bytes)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
            {
                Some(v) => v,
                None => {
                    log::warn!(
                        "{} does not hold a TPM clock value; it is rewritten at the next renewal",
                        path.display()
                    );
                    0
                }
            },
            Ok(None) => 0,
            Err(e) => {
                log::warn!("cannot read the TPM clock lease: {e}");
                0
            }
        };
        Self {
            path,
            value,
            renewed: None,
        }
    }

    /// The lowest value a repaired TPM clock may be set to.
    #[must_use]
    pub(crate) fn floor(&self) -> u64 {
        self.value
    }

    /// Whether half of the lease may have run since it was renewed (or it
    /// was not renewed by this process yet).
    #[must_use]
    pub(crate) fn due(&self) -> bool {
        self.renewed
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(CLOCK_LEASE_MS / 2))
    }

    /// Renews the lease from the TPM clock `clock` (a safe one): persists
    /// `clock` + [`CLOCK_LEASE_MS`] if that is above the current lease.
    pub(crate) fn renew(&mut self, clock: u64) {
        let value = renewed_lease(clock).max(self.value);
        if value != self.value {
            match store::write_private(&self.path, format!("{value}\n").as_bytes()) {
                Ok(()) => self.value = value,
                // The old lease stays (a repair after a power loss uses the
                // value on disk); tried again at the next renewal.
                Err(e) => log::warn!(
                    "cannot renew the TPM clock lease: {e}; make keylime_dir writable by the \
                     user keylet runs as"
                ),
            }
        }
        self.renewed = Some(Instant::now());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_survives_a_restart_and_only_grows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut lease = ClockLease::load(path.clone());
        assert_eq!(lease.floor(), 0);
        assert!(lease.due());
        lease.renew(1_000);
        assert_eq!(lease.floor(), 1_000 + CLOCK_LEASE_MS);
        assert!(!lease.due());
        // A clock that went back (an unclean reset) never lowers the lease.
        lease.renew(10);
        assert_eq!(lease.floor(), 1_000 + CLOCK_LEASE_MS);
        let again = ClockLease::load(path.clone());
        assert_eq!(again.floor(), 1_000 + CLOCK_LEASE_MS);
        std::fs::write(&path, b"not a number").unwrap();
        assert_eq!(ClockLease::load(path).floor(), 0);
    }
}
