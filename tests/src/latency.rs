//! A latency-faithful TPM for tests: per-command answer times of a discrete
//! TPM on SPI/LPC or of a firmware TPM, and the busy answers and stalls real
//! chips give, applied by the `slow-tpm` proxy (`src/bin/slow-tpm.rs`) in
//! front of swtpm, which answers in microseconds to milliseconds.
//!
//! The discrete profile follows published measurements of discrete TPM 2.0
//! chips (RSA key generation 1-30 s, an RSA signature 100-300 ms, PCR
//! commands 5-10 ms): CreatePrimary/Create 6 s, Quote 200 ms,
//! ActivateCredential 250 ms, Load 40 ms, StartAuthSession 25 ms, PCR
//! commands 8-10 ms. The firmware profile is a TPM running in the CPU's
//! trusted firmware: key generation about 2 s, signatures 40 ms, the rest a
//! few milliseconds.

use std::time::Duration;

/// A per-command answer-time profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// A discrete TPM chip on SPI or LPC.
    Discrete,
    /// A firmware TPM.
    Firmware,
}

const CREATE_PRIMARY: u32 = 0x131;
const CREATE: u32 = 0x153;
const QUOTE: u32 = 0x158;
const CERTIFY: u32 = 0x148;
const SIGN: u32 = 0x15D;
const ACTIVATE_CREDENTIAL: u32 = 0x147;
const MAKE_CREDENTIAL: u32 = 0x168;
const LOAD: u32 = 0x157;
const START_AUTH_SESSION: u32 = 0x176;
const PCR_READ: u32 = 0x17E;
const PCR_EXTEND: u32 = 0x182;
const PCR_RESET: u32 = 0x13D;
const NV_READ: u32 = 0x14E;
const POLICY_SECRET: u32 = 0x151;

impl Profile {
    /// The profile named `name` (`discrete`, `firmware`).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "discrete" => Some(Self::Discrete),
            "firmware" => Some(Self::Firmware),
            _ => None,
        }
    }

    /// How long this TPM takes to answer command `cc`.
    #[must_use]
    pub const fn answer_time(self, cc: u32) -> Duration {
        let ms = match self {
            Self::Discrete => match cc {
                CREATE_PRIMARY | CREATE => 6000,
                ACTIVATE_CREDENTIAL => 250,
                QUOTE | CERTIFY | SIGN => 200,
                LOAD => 40,
                MAKE_CREDENTIAL | START_AUTH_SESSION => 25,
                NV_READ | POLICY_SECRET => 15,
                PCR_EXTEND | PCR_RESET => 10,
                PCR_READ => 8,
                _ => 5,
            },
            Self::Firmware => match cc {
                CREATE_PRIMARY | CREATE => 2000,
                ACTIVATE_CREDENTIAL => 50,
                QUOTE | CERTIFY | SIGN => 40,
                LOAD => 10,
                MAKE_CREDENTIAL | START_AUTH_SESSION => 5,
                NV_READ | POLICY_SECRET | PCR_EXTEND | PCR_RESET | PCR_READ => 2,
                _ => 1,
            },
        };
        Duration::from_millis(ms)
    }
}

/// TPM_RC_RETRY, TPM_RC_YIELDED, TPM_RC_TESTING: the busy answers a TPM may
/// give any command, in the order a burst sends them.
pub const BUSY: [u32; 3] = [0x922, 0x908, 0x90A];

/// Busy answers and a stall, by command count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hiccups {
    /// Every `busy_every`-th command (0: never) is first answered with a
    /// burst of `busy_burst` busy codes (cycling through [`BUSY`]).
    pub busy_every: u64,
    /// The length of each burst.
    pub busy_burst: u32,
    /// The `stall_at`-th command (0: none) is held this long before it is
    /// answered, as a TPM busy with self-test or a long NV write is.
    pub stall_at: u64,
    /// How long the stall lasts.
    pub stall: Duration,
}

impl Hiccups {
    /// How many busy answers command number `n` (from 1) gets before it is
    /// forwarded.
    #[must_use]
    pub const fn busy_for(&self, n: u64) -> u32 {
        if self.busy_every != 0 && n.is_multiple_of(self.busy_every) {
            self.busy_burst
        } else {
            0
        }
    }

    /// The extra hold of command number `n`.
    #[must_use]
    pub fn stall_for(&self, n: u64) -> Duration {
        if self.stall_at != 0 && n == self.stall_at {
            self.stall
        } else {
            Duration::ZERO
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_discrete_profile_has_the_published_figures() {
        let d = Profile::Discrete;
        assert_eq!(d.answer_time(CREATE_PRIMARY), Duration::from_secs(6));
        assert_eq!(d.answer_time(QUOTE), Duration::from_millis(200));
        assert_eq!(d.answer_time(PCR_READ), Duration::from_millis(8));
        assert!(Profile::Firmware.answer_time(QUOTE) < d.answer_time(QUOTE));
        assert_eq!(Profile::from_name("discrete"), Some(d));
        assert_eq!(Profile::from_name("fast"), None);
    }

    #[test]
    fn hiccups_by_command_number() {
        let h = Hiccups {
            busy_every: 10,
            busy_burst: 3,
            stall_at: 7,
            stall: Duration::from_secs(2),
        };
        assert_eq!((h.busy_for(9), h.busy_for(10), h.busy_for(20)), (0, 3, 3));
        assert_eq!(h.stall_for(7), Duration::from_secs(2));
        assert_eq!(h.stall_for(8), Duration::ZERO);
        assert_eq!(Hiccups::default().busy_for(10), 0);
    }
}
