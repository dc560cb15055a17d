//! The one thing the core needs from the outside world: a way to move a
//! complete command frame to the TPM and a complete response frame back.
//!
//! Sending and waiting are futures, so a transport may let its caller do
//! other work while the TPM computes. A transport that blocks returns futures
//! that are ready when first polled, and [`block_on`] drives them.

use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

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
    fn transact(
        &mut self,
        command: &[u8],
        response: &mut [u8],
    ) -> impl Future<Output = Result<usize, Self::Error>> + Send;

    /// Called before retry number `attempt` (1-based) of a command the TPM
    /// answered with a retryable code (RETRY, YIELDED, TESTING). A std
    /// transport sleeps a little here; the default does nothing.
    fn backoff(&mut self, attempt: u32) -> impl Future<Output = ()> + Send {
        let _ = attempt;
        core::future::ready(())
    }
}

impl<T: Transport + ?Sized> Transport for &mut T {
    type Error = T::Error;

    fn transact(
        &mut self,
        command: &[u8],
        response: &mut [u8],
    ) -> impl Future<Output = Result<usize, Self::Error>> + Send {
        (**self).transact(command, response)
    }

    fn backoff(&mut self, attempt: u32) -> impl Future<Output = ()> + Send {
        (**self).backoff(attempt)
    }
}

/// Drives `future` to its end on this thread, polling it again at once when
/// it is not ready: for the futures of a transport that blocks, which are
/// ready when first polled.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        core::hint::spin_loop();
    }
}

/// [`block_on`] as a method of every future.
pub trait BlockOn: Future + Sized {
    /// Drives this future to its end on this thread ([`block_on`]).
    fn block_on(self) -> Self::Output {
        block_on(self)
    }
}

impl<F: Future> BlockOn for F {}
