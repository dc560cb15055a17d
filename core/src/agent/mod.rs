//! The TPM command sequences the agent runs, generic over a
//! [`Transport`] and working entirely in caller-provided buffers.
//!
//! [`Tpm`] owns the transport and borrows one command and one response
//! buffer (4096 bytes each suffice for every sequence here). Every object or
//! session a sequence creates is flushed again on every error path.

mod certify;
mod clock;
mod ek;
mod error;
mod keys;
mod lockout;
mod nv;
mod quote;
mod session;

pub use certify::{CertifyLens, CertifyRequest};
pub use clock::ClockRepair;
pub use ek::{AtTcgHandle, EkOrigin, NotTheEk};
pub use error::AgentError;
pub use keys::{CreatedAk, Ek, EkHandle};
pub use nv::{MAX_NV_CHUNK, der_sequence_len};
pub use quote::{MAX_QUOTE_ATTEMPTS, QuoteRequest};

use crate::tpm::command::CommandError;
use crate::tpm::reader::ReadError;
use crate::tpm::response::{self, Response};
use crate::tpm::transport::Transport;

/// The recommended size of each of the command and response buffers.
pub const BUFFER_SIZE: usize = 4096;

/// How often a command answered with RETRY, YIELDED or TESTING is resent.
pub const MAX_RETRIES: u32 = 8;

/// A TPM reached through a transport, with borrowed command and response buffers.
#[derive(Debug)]
pub struct Tpm<'b, T: Transport> {
    transport: T,
    cmd: &'b mut [u8],
    rsp: &'b mut [u8],
    endorsement: Password<'b>,
}

/// A borrowed password, never printed.
#[derive(Clone, Copy, Default)]
struct Password<'b>(&'b [u8]);

impl core::fmt::Debug for Password<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(if self.0.is_empty() { "empty" } else { "set" })
    }
}

impl<'b, T: Transport> Tpm<'b, T> {
    /// A TPM over `transport`, building commands in `cmd` and receiving
    /// responses in `rsp` (see [`BUFFER_SIZE`]).
    pub fn new(transport: T, cmd: &'b mut [u8], rsp: &'b mut [u8]) -> Self {
        Self {
            transport,
            cmd,
            rsp,
            endorsement: Password::default(),
        }
    }

    /// Uses `password` as the endorsement hierarchy's authorization: for the
    /// EK's TPM2_CreatePrimary and the PolicySecret of its Policy A session
    /// (empty by default, as the TPM ships).
    #[must_use]
    pub fn with_endorsement_password(mut self, password: &'b [u8]) -> Self {
        self.endorsement = Password(password);
        self
    }

    /// The transport.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Gives the transport back.
    pub fn into_transport(self) -> T {
        self.transport
    }

    /// Builds one command with `build`, sends it, resends it while the TPM
    /// answers with a retryable code (calling [`Transport::backoff`] between
    /// attempts), then checks the response code and splits the response.
    ///
    /// # Errors
    ///
    /// [`AgentError::Command`] if the command cannot be built,
    /// [`AgentError::Transport`] on I/O failure, [`AgentError::Response`] for
    /// an error code (also after [`MAX_RETRIES`] retryable answers) or a
    /// malformed frame.
    pub async fn execute<F>(&mut self, build: F) -> Result<Response<'_>, AgentError<T::Error>>
    where
        F: FnOnce(&mut [u8]) -> Result<&[u8], CommandError>,
    {
        let len = build(self.cmd)?.len();
        let command = self.cmd.get(..len).unwrap_or(&[]);
        let cc = response::command_code(command);
        let mut attempt: u32 = 0;
        let n = loop {
            let n = self
                .transport
                .transact(command, self.rsp)
                .await
                .map_err(|error| AgentError::Transport { cc, error })?;
            let frame = self.rsp.get(..n).ok_or(AgentError::BufferTooSmall {
                what: "TPM response",
                needed: n,
                available: self.rsp.len(),
            })?;
            match response::raw_rc(frame) {
                Some(rc) if rc.is_retryable() && attempt < MAX_RETRIES => {
                    attempt = attempt.saturating_add(1);
                    self.transport.backoff(attempt).await;
                }
                _ => break n,
            }
        };
        let frame = self.rsp.get(..n).unwrap_or(&[]);
        Ok(response::split(cc, frame)?)
    }
}

/// Maps a reader error of command `cc` into an [`AgentError`].
fn read_err<E>(cc: u32) -> impl Fn(ReadError) -> AgentError<E> {
    move |error| AgentError::Read { cc, error }
}

/// Copies `src` into the front of `dst`, returning its length.
fn copy_out<E>(src: &[u8], dst: &mut [u8], what: &'static str) -> Result<usize, AgentError<E>> {
    let available = dst.len();
    let out = dst.get_mut(..src.len()).ok_or(AgentError::BufferTooSmall {
        what,
        needed: src.len(),
        available,
    })?;
    out.copy_from_slice(src);
    Ok(src.len())
}
