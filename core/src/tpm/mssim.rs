//! The Microsoft/IBM TPM simulator's socket protocol, which tpm2-tss's
//! `mssim` TCTI speaks (the simulator's `TcpServer.c`):
//!
//! * the TPM port takes `TPM_SEND_COMMAND` (u32), the locality (u8), the
//!   command's size (u32) and the command, and answers with the response's
//!   size (u32), the response and an acknowledgement (u32, 0);
//! * the platform port (TPM port + 1) takes one u32 signal at a time, such
//!   as power-on and NV-on, each acknowledged with a u32 0;
//! * `TPM_SESSION_END` on either port ends that connection.
//!
//! All integers are big-endian. After power-on the TPM needs TPM2_Startup
//! ([`super::command::startup_clear`]); [`startup_done`] tells whether its
//! answer leaves the TPM started.

use super::response::raw_rc;

/// TPM port: a command follows.
pub const TPM_SEND_COMMAND: u32 = 8;
/// Either port: the client is done with this connection.
pub const TPM_SESSION_END: u32 = 20;
/// Platform port: power the TPM on (nothing if it is on already).
pub const SIGNAL_POWER_ON: u32 = 1;
/// Platform port: make NV memory available.
pub const SIGNAL_NV_ON: u32 = 11;
/// The bytes before the command on the TPM port.
pub const SEND_HEADER_SIZE: usize = 9;
/// TPM_RC_INITIALIZE: TPM2_Startup was done already.
const RC_INITIALIZE: u32 = 0x100;

/// The `TPM_SEND_COMMAND` header of a `len`-byte command at `locality`;
/// `None` if `len` does not fit a u32.
#[must_use]
pub fn send_header(locality: u8, len: usize) -> Option<[u8; SEND_HEADER_SIZE]> {
    let size = u32::try_from(len).ok()?.to_be_bytes();
    let cmd = TPM_SEND_COMMAND.to_be_bytes();
    Some([
        cmd[0], cmd[1], cmd[2], cmd[3], locality, size[0], size[1], size[2], size[3],
    ])
}

/// A signal, a size or an acknowledgement: one big-endian u32.
#[must_use]
pub const fn word(bytes: [u8; 4]) -> u32 {
    u32::from_be_bytes(bytes)
}

/// Whether a TPM2_Startup response leaves the TPM started: success, or
/// TPM_RC_INITIALIZE (it was started before).
#[must_use]
pub fn startup_done(response: &[u8]) -> bool {
    raw_rc(response).is_some_and(|rc| rc.is_success() || rc.0 == RC_INITIALIZE)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_send_command_header_is_code_locality_size() {
        assert_eq!(
            send_header(0, 0x1a2).unwrap(),
            [0, 0, 0, 8, 0, 0, 0, 0x01, 0xa2]
        );
        assert_eq!(send_header(3, 10).unwrap()[4], 3);
    }

    #[test]
    fn startup_is_done_when_it_succeeds_or_was_done() {
        let rsp = |rc: u32| {
            let mut f = [0x80, 0x01, 0, 0, 0, 10, 0, 0, 0, 0];
            f[6..].copy_from_slice(&rc.to_be_bytes());
            f
        };
        assert!(startup_done(&rsp(0)));
        assert!(startup_done(&rsp(0x100)));
        assert!(!startup_done(&rsp(0x101)));
        assert!(!startup_done(&[0x80]));
    }
}
