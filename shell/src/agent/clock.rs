//! Keeping the TPM clock acceptable to the verifier: after an unclean TPM
//! reset the clock is "not safe" and the Keylime verifier fails every quote
//! for good, so keylet sets it forward past where the TPM would mark it safe
//! by itself and past its clock lease (`tpm_clock_repair`, on by default; see
//! [`keylet_core::tpm::clock`]).
//!
//! The clock lease is a TPM clock value, persisted in `keylime_dir`, above
//! every clock value keylet's quotes may have reported. After an unclean TPM
//! reset the clock restarts from the value the TPM last saved, and swtpm
//! saves it only at an orderly shutdown: two power losses in a row would let
//! the clock repair set it to a value the verifier has already seen, and the
//! verifier fails that quote for good. So keylet keeps a lease at least
//! [`CLOCK_LEASE_MS`] / 2 ahead of the TPM clock, renewed (one
//! TPM2_ReadClock and one small atomic file write) when half of it may have
//! run. At start and after a TPM reconnect keylet sets the clock to at least
//! the lease, also when the TPM calls its clock safe: swtpm stopped with QEMU
//! restarts an old clock value and reports it safe.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::secret::Secret;
use keylet_core::agent::{AgentError, ClockRepair};
use keylet_core::tpm::clock::{CLOCK_LEASE_MS, renewed_lease};
use keylet_core::tpm::command::Auth;

use super::tpm_box::TpmBox;
use crate::store;

/// Checks the TPM clock and, if the clock is not safe and the box's lease
/// holds the owner hierarchy's password (`tpm_clock_repair`), sets it
/// forward with TPM2_ClockSet. Logs what was found and done. Returns whether
/// the clock is safe now.
pub(crate) async fn ensure_safe(tpm: &mut TpmBox) -> bool {
    let safe = check_and_repair(tpm).await;
    if safe {
        renew_lease(tpm, true).await;
    }
    safe
}

/// Renews the clock lease, when there is one, if half of it may have run or
/// `now` (the quote path calls this before each quote: one TPM2_ReadClock
/// about every 35 minutes).
pub(crate) async fn renew_lease(tpm: &mut TpmBox, now: bool) {
    if !tpm.clock_lease.as_ref().is_some_and(|l| now || l.due()) {
        return;
    }
    match tpm.tpm().read_clock().await {
        Ok(c) if c.safe => {
            if let Some(lease) = tpm.clock_lease.as_mut() {
                lease.renew(c.clock);
            }
        }
        Ok(_) => {}
        Err(e) => log::warn!("could not read the TPM clock to renew the clock lease: {e}"),
    }
}

async fn check_and_repair(tpm: &mut TpmBox) -> bool {
    let floor = tpm.clock_lease.as_ref().map_or(0, |l| l.value);
    let repair = tpm.clock_lease.as_ref().and_then(|l| l.repair.clone());
    let mut tpm = tpm.tpm();
    let Some(owner_password) = repair else {
        return match tpm.read_clock().await {
            Ok(c) if !c.safe => {
                log::error!(
                    "the TPM clock is not safe (unclean TPM reset; reset count {}): the verifier \
                     fails every quote until the TPM next saves its clock (at most about 70 \
                     minutes), or set tpm_clock_repair = true to let keylet set it forward",
                    c.reset_count
                );
                false
            }
            Ok(_) => true,
            Err(e) => {
                log::warn!("could not read the TPM clock: {e}");
                true
            }
        };
    };
    match tpm
        .make_clock_safe(Auth::Password(&owner_password), floor)
        .await
    {
        Ok(ClockRepair::AlreadySafe(_)) => true,
        Ok(ClockRepair::Advanced { before, after }) => {
            let (to, resets) = (after.clock, before.reset_count);
            let by = to.saturating_sub(before.clock) / 1000;
            if before.safe {
                log::info!(
                    "set the TPM clock forward by {by} s to {to} ms, keylet's clock lease: above \
                     every clock value keylet may have reported before (after a power loss a TPM \
                     may restart an old clock value and still call it safe; reset count {resets})"
                );
            } else {
                log::warn!(
                    "the TPM clock was not safe (unclean TPM reset; reset count {resets}); set it \
                     forward by {by} s to {to} ms, above every clock value reported before, and \
                     the TPM marked it safe"
                );
            }
            true
        }
        // The TPM did not answer: whether its clock is safe is not known.
        Err(e @ AgentError::Transport { .. }) => {
            log::warn!("could not check the TPM clock: {e}");
            false
        }
        Err(e) => {
            log::error!(
                "the TPM clock is not safe (unclean TPM reset) and could not be set forward: \
                 {e}; the verifier fails quotes until the TPM next saves its clock; check \
                 tpm_ownerpassword (the owner hierarchy's password), or set the clock forward \
                 with tpm2_setclock"
            );
            false
        }
    }
}

/// The lease file's name in `keylime_dir`.
pub(crate) const FILE_NAME: &str = "keylet-clock-lease";

/// The persisted clock lease (the lowest value a repaired TPM clock may be
/// set to), when it was last renewed, and the owner hierarchy's password
/// (`tpm_ownerpassword`) when an unsafe clock is set forward.
#[derive(Debug)]
pub(crate) struct ClockLease {
    path: PathBuf,
    value: u64,
    renewed: Option<Instant>,
    repair: Option<Secret<Vec<u8>>>,
}

impl ClockLease {
    /// Reads the lease at `path` (none yet: 0), with the owner password to
    /// `repair` an unsafe clock with. An unreadable or malformed file is
    /// logged and counts as no lease: the next renewal rewrites it.
    #[must_use]
    pub(crate) fn load(path: PathBuf, repair: Option<Secret<Vec<u8>>>) -> Self {
        let value = match store::read_private(&path) {
            Ok(Some(bytes)) => std::str::from_utf8(&bytes)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or_else(|| {
                    log::warn!(
                        "{} does not hold a TPM clock value; it is rewritten at the next renewal",
                        path.display()
                    );
                    0
                }),
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
            repair,
        }
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
        let mut lease = ClockLease::load(path.clone(), None);
        assert_eq!(lease.value, 0);
        assert!(lease.due());
        lease.renew(1_000);
        assert_eq!(lease.value, 1_000 + CLOCK_LEASE_MS);
        assert!(!lease.due());
        // A clock that went back (an unclean reset) never lowers the lease.
        lease.renew(10);
        assert_eq!(lease.value, 1_000 + CLOCK_LEASE_MS);
        let again = ClockLease::load(path.clone(), None);
        assert_eq!(again.value, 1_000 + CLOCK_LEASE_MS);
        std::fs::write(&path, b"not a number").unwrap();
        assert_eq!(ClockLease::load(path, None).value, 0);
    }
}
