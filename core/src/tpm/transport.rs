//! The one thing the core needs from the outside world: a way to move a
//! complete command frame to the TPM and a complete response frame back.

/// Moves one complete TPM command to the TPM and one complete response back.
///
/// Implementations live in the std shell (device node, swtpm socket, open
/// file descriptor) and in tests (replay, recording).
pub trait Transport {
    /// The transport's I/O error.
    type Error: core::fmt::Debug + core::fmt::Display;

    /// Sends `command` (one whole frame) and writes the whole response frame
    /// into `response`, returning its length.
    ///
    /// # Errors
    ///
    /// Any I/O failure, a timeout, or a response larger than `response`.
    fn transact(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, Self::Error>;

    /// Called before retry number `attempt` (1-based) of a command the TPM
    /// answered with a retryable code (RETRY, YIELDED, TESTING). A std
    /// transport sleeps a little here; the default does nothing.
    fn backoff(&mut self, attempt: u32) {
        let _ = attempt;
    }
}

impl<T: Transport + ?Sized> Transport for &mut T {
    type Error = T::Error;

    fn transact(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, Self::Error> {
        (**self).transact(command, response)
    }

    fn backoff(&mut self, attempt: u32) {
        (**self).backoff(attempt);
    }
}
