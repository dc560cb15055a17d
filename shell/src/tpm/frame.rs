//! Helpers shared by the transports. The frame header knowledge is core's.

use std::time::Duration;

pub(crate) use keylet_core::tpm::response::{HEADER_SIZE as HEADER, command_code, declared_size};

/// Sleeps before retry `attempt` of a command the TPM asked to resend:
/// 20 ms per attempt, at most 200 ms.
pub(crate) fn backoff(attempt: u32) {
    let ms = u64::from(attempt.min(10)).saturating_mul(20);
    std::thread::sleep(Duration::from_millis(ms));
}
