//! swtpm's TCP data port: raw TPM frames on one persistent connection.
//!
//! swtpm processes whatever it holds once 10 bytes have arrived, so each
//! command goes out in a single `write_all` of the finished frame.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use keylet_core::tpm::transport::Transport;

use super::error::TransportError;
use super::frame::{self, HEADER};

/// A TPM reached over TCP (swtpm `--server type=tcp`).
#[derive(Debug)]
pub struct TcpTransport {
    stream: TcpStream,
    device: String,
    timeout: Duration,
}

impl TcpTransport {
    /// Connects to `host:port` with `timeout` for connecting, each read and
    /// each write.
    ///
    /// # Errors
    ///
    /// [`TransportError::Open`] naming the address.
    pub fn connect(host: &str, port: u16, timeout: Duration) -> Result<Self, TransportError> {
        let device = format!("tcp://{}", crate::net::HostPort(host, port));
        let stream = connect_stream(host, port, timeout, &device)?;
        Ok(Self {
            stream,
            device,
            timeout,
        })
    }

    fn map_io(&self, cc: u32, op: &'static str, e: std::io::Error) -> TransportError {
        map_io(&self.device, self.timeout, cc, op, e)
    }
}

/// A TCP connection to `host:port` (the first address that answers) with
/// `timeout` for connecting, each read and each write, no Nagle delay.
///
/// # Errors
///
/// [`TransportError::Open`] naming `device`.
pub(super) fn connect_stream(
    host: &str,
    port: u16,
    timeout: Duration,
    device: &str,
) -> Result<TcpStream, TransportError> {
    let open_err = |source| TransportError::Open {
        device: device.to_owned(),
        source,
    };
    let mut last = std::io::Error::new(ErrorKind::NotFound, "host resolves to no address");
    let addrs = (host, port).to_socket_addrs().map_err(open_err)?;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => {
                stream.set_nodelay(true).map_err(open_err)?;
                stream.set_read_timeout(Some(timeout)).map_err(open_err)?;
                stream.set_write_timeout(Some(timeout)).map_err(open_err)?;
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    Err(open_err(last))
}

/// The transport error of an I/O error `e` during `op` of command `cc`.
pub(super) fn map_io(
    device: &str,
    timeout: Duration,
    cc: u32,
    op: &'static str,
    e: std::io::Error,
) -> TransportError {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => TransportError::Timeout {
            device: device.to_owned(),
            cc,
            seconds: timeout.as_secs(),
        },
        ErrorKind::UnexpectedEof => TransportError::Closed {
            device: device.to_owned(),
            cc,
        },
        _ => TransportError::Io {
            device: device.to_owned(),
            cc,
            op,
            source: e,
        },
    }
}

impl Transport for TcpTransport {
    type Error = TransportError;

    fn transact(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, TransportError> {
        let cc = frame::command_code(command);
        self.stream
            .write_all(command)
            .map_err(|e| self.map_io(cc, "write", e))?;
        let header = response.get_mut(..HEADER).ok_or(TransportError::BadSize {
            device: self.device.clone(),
            cc,
            size: HEADER,
            capacity: 0,
        })?;
        self.stream
            .read_exact(header)
            .map_err(|e| self.map_io(cc, "read", e))?;
        let size = frame::declared_size(header).unwrap_or(0);
        let capacity = response.len();
        let body = response
            .get_mut(HEADER..size)
            .filter(|_| size >= HEADER)
            .ok_or(TransportError::BadSize {
                device: self.device.clone(),
                cc,
                size,
                capacity,
            })?;
        self.stream
            .read_exact(body)
            .map_err(|e| self.map_io(cc, "read", e))?;
        Ok(size)
    }

    fn backoff(&mut self, attempt: u32) {
        frame::backoff(attempt);
    }
}
