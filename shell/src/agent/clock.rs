//! Keeping the TPM clock acceptable to the verifier: after an unclean TPM
//! reset the clock is "not safe" and the Keylime verifier fails every quote
//! for good, so keylet sets it forward past where the TPM would mark it safe
//! by itself and past its clock lease (`tpm_clock_repair`, on by default; see
//! [`keylet_core::tpm::clock`] and [`super::clock_lease`]).

use keylet_core::agent::ClockRepair;
use keylet_core::tpm::command::Auth;

use super::tpm_box::TpmBox;

/// Checks the TPM clock and, if the clock is not safe and `repair` names the
/// owner hierarchy's password, sets it forward with TPM2_ClockSet. Logs what
/// was found and done. Returns whether the clock is safe now.
pub(crate) fn ensure_safe(tpm: &mut TpmBox, repair: Option<&[u8]>) -> bool {
    let safe = check_and_repair(tpm, repair);
    if safe {
        renew_lease(tpm);
    }
    safe
}

/// Renews the clock lease if half of it may have run (the quote path calls
/// this before each quote: one TPM2_ReadClock about every 35 minutes).
pub(crate) fn renew_lease_if_due(tpm: &mut TpmBox) {
    if tpm.clock_lease().is_some_and(|l| l.due()) {
        renew_lease(tpm);
    }
}

fn renew_lease(tpm: &mut TpmBox) {
    if tpm.clock_lease().is_none() {
        return;
    }
    match tpm.tpm().read_clock() {
        Ok(c) if c.safe => {
            if let Some(lease) = tpm.clock_lease() {
                lease.renew(c.clock);
            }
        }
        Ok(_) => {}
        Err(e) => log::warn!("could not read the TPM clock to renew the clock lease: {e}"),
    }
}

fn check_and_repair(tpm: &mut TpmBox, repair: Option<&[u8]>) -> bool {
    let floor = tpm.clock_lease().map_or(0, |l| l.floor());
    let mut tpm = tpm.tpm();
    let Some(owner_password) = repair else {
        return match tpm.read_clock() {
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
    match tpm.make_clock_safe(Auth::Password(owner_password), floor) {
        Ok(ClockRepair::AlreadySafe(_)) => true,
        Ok(ClockRepair::Advanced { before, after }) if before.safe => {
            log::info!(
                "set the TPM clock forward by {} s to {} ms, keylet's clock lease: above every \
                 clock value keylet may have reported before (after a power loss a TPM may \
                 restart an old clock value and still call it safe; reset count {})",
                after.clock.saturating_sub(before.clock) / 1000,
                after.clock,
                before.reset_count
            );
            true
        }
        Ok(ClockRepair::Advanced { before, after }) => {
            log::warn!(
                "the TPM clock was not safe (unclean TPM reset; reset count {}); set it forward \
                 by {} s to {} ms, above every clock value reported before, and the TPM marked \
                 it safe",
                before.reset_count,
                after.clock.saturating_sub(before.clock) / 1000,
                after.clock
            );
            true
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
