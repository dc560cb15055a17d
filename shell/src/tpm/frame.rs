//! Helpers shared by the transports.

use std::time::Duration;

/// The size of a TPM command or response header.
pub(crate) const HEADER: usize = 10;

/// The command code of a command frame (0 if it is too short).
pub(crate) fn command_code(command: &[u8]) -> u32 {
    match command.get(6..10) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
        _ => 0,
    }
}

/// The size a response header declares (`None` before 10 bytes).
pub(crate) fn declared_size(header: &[u8]) -> Option<usize> {
    match header.get(2..6) {
        Some(&[a, b, c, d]) => usize::try_from(u32::from_be_bytes([a, b, c, d])).ok(),
        _ => None,
    }
}

/// Sleeps before retry `attempt` of a command the TPM asked to resend:
/// 20 ms per attempt, at most 200 ms.
pub(crate) fn backoff(attempt: u32) {
    let ms = u64::from(attempt.min(10)).saturating_mul(20);
    std::thread::sleep(Duration::from_millis(ms));
}
