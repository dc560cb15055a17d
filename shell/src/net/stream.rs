//! One type for every byte stream keylet speaks HTTP over (TCP, a Unix
//! socket, TLS over either), so that hyper's connection code and the TLS
//! server are compiled once for all of them rather than once per kind of
//! stream (each copy cost the static binary about 10 KiB; BENCHMARKS.md).

use tokio::io::{AsyncRead, AsyncWrite};

pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

pub(crate) type BoxStream = Box<dyn Stream>;

pub(crate) fn boxed(io: impl Stream + 'static) -> BoxStream {
    Box::new(io)
}
