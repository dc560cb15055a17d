//! The TPM clock: TPM2_ReadClock, TPM2_ClockSet, and the arithmetic of
//! making an unsafe clock safe again.
//!
//! After a TPM reset without an orderly TPM2_Shutdown, the TPM restarts its
//! clock from the value it last saved to NV and marks it unsafe
//! (`clockInfo.safe = 0`): it may repeat values it already reported. The
//! Keylime verifier fails such quotes for good, and it also fails a quote
//! whose clock is not above the previous quote's (unless both the reset and
//! the restart count moved).
//!
//! The reference implementation saves the clock each time it crosses an NV
//! update interval (2^22 ms, about 70 minutes) and marks it safe then;
//! [`safe_clock_target`] is the first value of the next interval. But a TPM
//! need not save the clock there: swtpm (libtpms) saves it only at an orderly
//! TPM2_Shutdown, neither on TPM2_ClockSet nor at the interval, so after
//! each unclean reset its clock restarts from the same old value, however
//! long it ran since. So the value the clock is set to is also at least a
//! caller-kept floor: a clock lease, [`renewed_lease`], that the caller
//! persists and renews (at most every [`CLOCK_LEASE_MS`] / 2 of running time)
//! so that it stays above every clock value a quote may have reported.
use tpm2_protocol::{
    basic::{TpmUint32, TpmUint64},
    data::{TpmCc, TpmRh},
    frame::{TpmClockSetCommand, TpmReadClockCommand},
};

use super::command::{Auth, CommandError, marshal};
use super::cursor::ReadError;
use super::fields::Fields;
use crate::verify::ClockInfo;

/// log2 of the reference implementation's NV clock update interval in
/// milliseconds (`NV_CLOCK_UPDATE_INTERVAL`).
pub const NV_CLOCK_UPDATE_INTERVAL_LOG2: u32 = 22;

/// The largest value TPM2_ClockSet accepts (the TPM refuses anything at or
/// above 0xFFFF_0000_0000_0000).
const CLOCK_SET_LIMIT: u64 = 0xFFFF_0000_0000_0000;

/// TPM2_ReadClock.
///
/// # Errors
///
/// [`CommandError`] if `buf` is too small.
pub fn read_clock(buf: &mut [u8]) -> Result<&[u8], CommandError> {
    marshal(buf, &TpmReadClockCommand { handles: [] }, &[])
}

/// TPM2_ClockSet of the owner hierarchy (authorized by `auth`) to
/// `new_time` milliseconds.
///
/// # Errors
///
/// [`CommandError::Invalid`] if `new_time` is at or above the TPM's limit,
/// [`CommandError`] if `buf` is too small or the password too long.
pub fn clock_set<'b>(
    buf: &'b mut [u8],
    new_time: u64,
    auth: Auth<'_>,
) -> Result<&'b [u8], CommandError> {
    let cc = TpmCc::ClockSet;
    if new_time >= CLOCK_SET_LIMIT {
        return Err(CommandError::Invalid {
            cc,
            what: "new time is above what TPM2_ClockSet accepts",
        });
    }
    let cmd = TpmClockSetCommand {
        handles: [TpmUint32::new(TpmRh::Owner.value())],
        new_time: TpmUint64::new(new_time),
    };
    marshal(buf, &cmd, &[auth.to_command(cc)?])
}

/// Reads a TPM2_ReadClock response: TPMS_TIME_INFO, of which the clock part
/// is returned.
///
/// # Errors
///
/// [`ReadError`] if the parameters are short or `safe` is neither 0 nor 1.
pub fn time_info(params: &[u8]) -> Result<ClockInfo, ReadError> {
    let mut f = Fields::new(params);
    f.field::<TpmUint64>("time")?;
    ClockInfo::read(&mut f)
}

/// The clock value that makes an unsafe clock safe: the first millisecond
/// of the NV update interval after the one `clock` is in. `None` if that is
/// beyond what TPM2_ClockSet accepts.
#[must_use]
pub fn safe_clock_target(clock: u64) -> Option<u64> {
    let mask = (1u64 << NV_CLOCK_UPDATE_INTERVAL_LOG2) - 1;
    (clock | mask)
        .checked_add(1)
        .filter(|t| *t < CLOCK_SET_LIMIT)
}

/// How far above the current TPM clock a clock lease reaches (one NV update
/// interval, about 70 minutes). Renew it before half of that has run.
pub const CLOCK_LEASE_MS: u64 = 1 << NV_CLOCK_UPDATE_INTERVAL_LOG2;

/// The lease that covers every clock value up to `clock` plus
/// [`CLOCK_LEASE_MS`]: no clock value reported within that much running time
/// from now reaches it.
#[must_use]
pub const fn renewed_lease(clock: u64) -> u64 {
    clock.saturating_add(CLOCK_LEASE_MS)
}

/// Whether `clock` is below the lease `lease`, the value above every clock a
/// quote may have reported. Such a clock may repeat reported values even when
/// the TPM calls it safe (swtpm stopped with its client restarts an old clock
/// value and reports it safe), so the caller sets it forward to the lease.
/// A running TPM's clock stays below its lease, so this holds at every start.
#[must_use]
pub const fn behind_lease(clock: u64, lease: u64) -> bool {
    clock < lease
}

/// Where to set an unsafe clock `clock` when the caller's lease is `floor`:
/// the first value of the next NV update interval, and not below `floor`.
/// `None` if that is beyond what TPM2_ClockSet accepts.
#[must_use]
pub fn repair_target(clock: u64, floor: u64) -> Option<u64> {
    safe_clock_target(clock)
        .map(|t| t.max(floor))
        .filter(|t| *t < CLOCK_SET_LIMIT)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn read_clock_frame() {
        let mut buf = [0u8; 16];
        assert_eq!(
            read_clock(&mut buf).unwrap(),
            &[0x80, 0x01, 0, 0, 0, 0x0A, 0, 0, 0x01, 0x81]
        );
    }

    #[test]
    fn clock_set_frame_names_the_owner_and_the_time() {
        let mut buf = [0u8; 64];
        let frame = clock_set(&mut buf, 0x0102_0304_0506_0708, Auth::EMPTY).unwrap();
        assert_eq!(
            frame,
            &[
                0x80, 0x02, 0, 0, 0, 0x23, 0, 0, 0x01, 0x28, 0x40, 0, 0, 0x01, 0, 0, 0, 9, 0x40, 0,
                0, 9, 0, 0, 1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8
            ]
        );
        assert!(matches!(
            clock_set(&mut buf, u64::MAX, Auth::EMPTY),
            Err(CommandError::Invalid { .. })
        ));
    }

    #[test]
    fn time_info_reads_the_clock_and_checks_safe() {
        // TPMS_TIME_INFO as after an unclean restart: time, clock, reset 3, restart 0, safe 0.
        let mut params = [0u8; 25];
        params[..8].copy_from_slice(&1234u64.to_be_bytes());
        params[8..16].copy_from_slice(&0x0040_1234u64.to_be_bytes());
        params[16..20].copy_from_slice(&3u32.to_be_bytes());
        let info = time_info(&params).unwrap();
        assert_eq!(
            info,
            ClockInfo {
                clock: 0x0040_1234,
                reset_count: 3,
                restart_count: 0,
                safe: false
            }
        );
        params[24] = 1;
        assert!(time_info(&params).unwrap().safe);
        params[24] = 2;
        assert_eq!(time_info(&params).unwrap_err().offset, 24);
        assert_eq!(time_info(&params[..20]).unwrap_err().offset, 20);
    }

    #[test]
    fn safe_target_is_the_next_interval_start() {
        let interval = 1u64 << NV_CLOCK_UPDATE_INTERVAL_LOG2;
        assert_eq!(safe_clock_target(0), Some(interval));
        assert_eq!(safe_clock_target(interval - 1), Some(interval));
        assert_eq!(safe_clock_target(interval), Some(2 * interval));
        assert_eq!(safe_clock_target(5 * interval + 7), Some(6 * interval));
        assert_eq!(safe_clock_target(u64::MAX), None);
        assert_eq!(safe_clock_target(CLOCK_SET_LIMIT - 1), None);
    }

    #[test]
    fn repair_target_respects_the_lease() {
        let interval = 1u64 << NV_CLOCK_UPDATE_INTERVAL_LOG2;
        // No lease: the next interval.
        assert_eq!(repair_target(400, 0), Some(interval));
        // A lease above it wins: the clock restarted from an old saved value
        // after it had run past the next interval.
        let lease = renewed_lease(interval + 60_000);
        assert_eq!(repair_target(400, lease), Some(lease));
        assert!(repair_target(400, lease).unwrap() > interval + 60_000);
        // A lease below the next interval changes nothing.
        assert_eq!(repair_target(5 * interval, 7), Some(6 * interval));
        assert_eq!(repair_target(400, CLOCK_SET_LIMIT), None);
        // Any clock below the lease may repeat reported values.
        let lease = renewed_lease(90_000);
        assert!(behind_lease(90_000, lease));
        assert!(!behind_lease(lease, lease));
        assert!(!behind_lease(0, 0));
    }
}
