//! Dictionary-attack (DA) protection: the TPM's lockout state, read from the
//! variable TPM properties (TPM 2.0 Part 1 §19.8, Part 2 §6.13).
//!
//! Every authorization failure of a DA-protected entity, and every TPM start
//! after an unclean shutdown in which one was used, increments the failure
//! counter; at `max_tries` the TPM refuses every DA-protected entity until
//! the counter has decayed by one per `interval`, or until the lockout
//! authorization resets it. Objects with `noDA`, the hierarchies and policy
//! sessions without PolicyAuthValue/PolicyPassword are exempt.

use super::capability::{CAP_TPM_PROPERTIES, Capability};
use super::command::{self, CommandError};
use super::cursor::ReadError;

/// TPM_PT_PERMANENT: TPMA_PERMANENT bits.
pub const PT_PERMANENT: u32 = 0x200;
/// TPM_PT_LOCKOUT_COUNTER: the current failure count.
pub const PT_LOCKOUT_COUNTER: u32 = 0x20E;
/// TPM_PT_MAX_AUTH_FAIL: failures until lockout.
pub const PT_MAX_AUTH_FAIL: u32 = 0x20F;
/// TPM_PT_LOCKOUT_INTERVAL: seconds until one failure is forgotten.
pub const PT_LOCKOUT_INTERVAL: u32 = 0x210;
/// TPM_PT_LOCKOUT_RECOVERY: seconds after a failed lockout-authorization
/// attempt until the next one is allowed.
pub const PT_LOCKOUT_RECOVERY: u32 = 0x211;
/// TPMA_PERMANENT.inLockout.
pub const PERMANENT_IN_LOCKOUT: u32 = 1 << 9;

/// How many properties from [`PT_PERMANENT`] on cover the lockout ones.
const PROPERTY_COUNT: u32 = PT_LOCKOUT_RECOVERY - PT_PERMANENT + 1;

/// TPM2_GetCapability of the variable properties that hold the lockout state.
///
/// # Errors
///
/// [`CommandError`] if `buf` is too small.
pub fn get_lockout(buf: &mut [u8]) -> Result<&[u8], CommandError> {
    command::get_capability(buf, CAP_TPM_PROPERTIES, PT_PERMANENT, PROPERTY_COUNT)
}

/// The TPM's dictionary-attack state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    /// TPMA_PERMANENT.inLockout: DA-protected entities are refused now.
    pub in_lockout: bool,
    /// Authorization failures counted so far.
    pub counter: u32,
    /// Failures that lock the TPM out (0: DA-protected entities are always refused).
    pub max_tries: u32,
    /// Seconds until one failure is forgotten (0: never, only the lockout
    /// authorization resets the counter).
    pub interval: u32,
    /// Seconds the lockout authorization is blocked after it failed.
    pub recovery: u32,
}

impl Lockout {
    /// Reads the lockout properties out of a GetCapability response.
    ///
    /// # Errors
    ///
    /// [`ReadError`] naming the first property the TPM did not return.
    pub fn from_capability(cap: &Capability<'_>) -> Result<Self, ReadError> {
        let get = |pt: u32, what: &'static str| cap.property(pt).ok_or(ReadError::invalid(what, 0));
        Ok(Self {
            in_lockout: get(PT_PERMANENT, "TPM_PT_PERMANENT missing")? & PERMANENT_IN_LOCKOUT != 0,
            counter: get(PT_LOCKOUT_COUNTER, "TPM_PT_LOCKOUT_COUNTER missing")?,
            max_tries: get(PT_MAX_AUTH_FAIL, "TPM_PT_MAX_AUTH_FAIL missing")?,
            interval: get(PT_LOCKOUT_INTERVAL, "TPM_PT_LOCKOUT_INTERVAL missing")?,
            recovery: get(PT_LOCKOUT_RECOVERY, "TPM_PT_LOCKOUT_RECOVERY missing")?,
        })
    }

    /// Seconds until DA-protected entities are usable again without the
    /// lockout authorization: 0 if not locked out, `None` if the TPM never
    /// leaves this lockout by itself (`interval` or `max_tries` is 0).
    #[must_use]
    pub fn seconds_until_usable(&self) -> Option<u64> {
        if !self.in_lockout {
            return Some(0);
        }
        if self.interval == 0 || self.max_tries == 0 {
            return None;
        }
        // Usable again once the counter has decayed below max_tries.
        let excess = u64::from(self.counter.saturating_sub(self.max_tries)) + 1;
        Some(excess.saturating_mul(u64::from(self.interval)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use crate::tpm::capability;

    /// swtpm 0.7.1 in lockout after three unclean restarts, as recorded
    /// (TPM_PT_PERMANENT .. TPM_PT_LOCKOUT_RECOVERY, 18 properties).
    fn recorded(permanent: u32, counter: u32) -> [u8; 9 + 18 * 8] {
        let mut b = [0u8; 9 + 18 * 8];
        b[..9].copy_from_slice(&[0, 0, 0, 0, 6, 0, 0, 0, 18]);
        for i in 0..18u32 {
            let pt = PT_PERMANENT + i;
            let value = match pt {
                PT_PERMANENT => permanent,
                PT_LOCKOUT_COUNTER => counter,
                PT_MAX_AUTH_FAIL => 3,
                PT_LOCKOUT_INTERVAL | PT_LOCKOUT_RECOVERY => 1000,
                _ => 7,
            };
            let at = 9 + 8 * i as usize;
            b[at..at + 4].copy_from_slice(&pt.to_be_bytes());
            b[at + 4..at + 8].copy_from_slice(&value.to_be_bytes());
        }
        b
    }

    #[test]
    fn reads_a_lockout_and_its_recovery_time() {
        let b = recorded(0x0000_0200 | 0x0000_0400, 3);
        let l = Lockout::from_capability(&capability::read(&b).unwrap()).unwrap();
        assert_eq!(
            l,
            Lockout {
                in_lockout: true,
                counter: 3,
                max_tries: 3,
                interval: 1000,
                recovery: 1000
            }
        );
        assert_eq!(l.seconds_until_usable(), Some(1000));
        let l = Lockout { counter: 5, ..l };
        assert_eq!(l.seconds_until_usable(), Some(3000));
        let l = Lockout { interval: 0, ..l };
        assert_eq!(l.seconds_until_usable(), None);
    }

    #[test]
    fn not_locked_out_is_usable_now() {
        let b = recorded(0x0000_0400, 1);
        let l = Lockout::from_capability(&capability::read(&b).unwrap()).unwrap();
        assert!(!l.in_lockout);
        assert_eq!(l.counter, 1);
        assert_eq!(l.seconds_until_usable(), Some(0));
    }

    #[test]
    fn a_missing_property_is_named_not_guessed() {
        let b = recorded(0, 0);
        // Only the first 15 properties: LOCKOUT_COUNTER (the 15th) is there, MAX_AUTH_FAIL not.
        let mut short = [0u8; 9 + 15 * 8];
        short.copy_from_slice(&b[..9 + 15 * 8]);
        short[8] = 15;
        let cap = capability::read(&short).unwrap();
        let err = Lockout::from_capability(&cap).unwrap_err();
        assert_eq!(err.what, "TPM_PT_MAX_AUTH_FAIL missing");
        // Another capability altogether.
        let handles = [0, 0, 0, 0, 1, 0, 0, 0, 0];
        assert!(Lockout::from_capability(&capability::read(&handles).unwrap()).is_err());
    }

    #[test]
    fn builds_the_capability_command() {
        let mut buf = [0u8; 64];
        let cmd = get_lockout(&mut buf).unwrap();
        assert_eq!(
            &cmd[10..],
            &[0, 0, 0, 6, 0, 0, 2, 0, 0, 0, 0, 18],
            "TPM_CAP_TPM_PROPERTIES from TPM_PT_PERMANENT, 18 properties"
        );
    }
}
