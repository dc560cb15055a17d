//! The one TPM transport over each link keylet supports. Every command goes
//! out whole and the response is read until its declared size has arrived;
//! errors name the device and the command in flight ([`Fail`]).

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use keylet_core::tpm::command;
use keylet_core::tpm::mssim::{
    self, SEND_HEADER_SIZE, SIGNAL_NV_ON, SIGNAL_POWER_ON, TPM_SESSION_END,
};
use keylet_core::tpm::response::{HEADER_SIZE as HEADER, command_code, declared_size};
use keylet_core::tpm::transport::Transport;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;

use super::TpmDevice;
use super::error::{Fail, Failure, TransportError};

/// A TPM: a character device or open descriptor, swtpm over TCP, or the
/// Microsoft/IBM simulator.
#[derive(Debug)]
pub struct TpmTransport {
    link: Link,
    device: String,
    timeout: Duration,
}

#[derive(Debug)]
enum Link {
    /// A TPM character device, an inherited descriptor, or one end of a
    /// socketpair to `swtpm chardev`: one `write`, then `poll` and `read`.
    Fd(OwnedFd),
    /// swtpm's TCP data port: raw frames. swtpm processes whatever it holds
    /// once 10 bytes have arrived, so a command goes out in one `write_all`.
    Tcp(TcpStream),
    /// The simulator's TPM port (framed commands) and platform port (signals).
    Mssim { tpm: TcpStream, platform: TcpStream },
}

/// Opens the TPM named by `device`, waiting at most `timeout` for each
/// response. The Microsoft/IBM simulator (its TPM port and the platform
/// port after it) is powered on, its NV turned on and sent
/// TPM2_Startup(CLEAR) (already started is fine); the byte layouts are
/// core's (`keylet_core::tpm::mssim`).
///
/// # Errors
///
/// [`Failure::Open`] naming the device if it cannot be opened, or an I/O,
/// timeout or size error of the simulator's set-up exchanges.
pub fn open(device: &TpmDevice, timeout: Duration) -> Result<TpmTransport, TransportError> {
    let name = device.to_string();
    let fail = Fail::at(&name, timeout);
    let link = match device {
        TpmDevice::Path(path) => Link::Fd(open_fd(path, &fail)?),
        // keylet forbids unsafe code, so an inherited descriptor is reopened
        // through /proc/self/fd/N: this works for a TPM character device,
        // not for a socket.
        TpmDevice::Fd(n) => Link::Fd(open_fd(Path::new(&format!("/proc/self/fd/{n}")), &fail)?),
        TpmDevice::Tcp { host, port } => Link::Tcp(connect_stream(host, *port, &fail)?),
        TpmDevice::Mssim { host, port } => {
            let Some(platform_port) = port.checked_add(1) else {
                return Err(fail.open("the platform port would be 65536".into()));
            };
            let tpm = connect_stream(host, *port, &fail)?;
            let platform = connect_stream(host, platform_port, &fail)?;
            Link::Mssim { tpm, platform }
        }
    };
    let mut t = TpmTransport {
        link,
        device: name.clone(),
        timeout,
    };
    if let Link::Mssim { platform, .. } = &mut t.link {
        for signal in [SIGNAL_POWER_ON, SIGNAL_NV_ON] {
            let sent = platform.write_all(&signal.to_be_bytes());
            sent.map_err(|e| fail.stream("write", e))?;
            match read_word(platform, &fail)? {
                0 => {}
                ack => {
                    return Err(fail.open(format!(
                        "the simulator answered platform signal {signal} with {ack}"
                    )));
                }
            }
        }
        let mut cmd = [0u8; 64];
        let mut rsp = [0u8; 64];
        let startup = command::startup_clear(&mut cmd).map_err(|e| fail.open(e.to_string()))?;
        let cc = command_code(startup);
        let n = t.transact(startup, &mut rsp)?;
        if !mssim::startup_done(rsp.get(..n).unwrap_or(&[])) {
            return Err(fail.open(format!(
                "TPM2_Startup (command {cc:#x}) was refused after power-on"
            )));
        }
    }
    Ok(t)
}

/// Opens a TPM character device (`/dev/tpmrm0`, `/dev/tpm0`) read-write,
/// close-on-exec.
fn open_fd(path: &Path, fail: &Fail<'_>) -> Result<OwnedFd, TransportError> {
    let flags = OFlag::O_RDWR | OFlag::O_CLOEXEC;
    nix::fcntl::open(path, flags, Mode::empty()).map_err(|e| fail.err(Failure::Open(e.into())))
}

impl TpmTransport {
    /// Uses a descriptor the process already owns (for example one end of a
    /// socketpair whose other end `swtpm chardev --fd` serves).
    #[must_use]
    pub fn from_owned(fd: OwnedFd, device: impl Into<String>, timeout: Duration) -> Self {
        let device = device.into();
        Self {
            link: Link::Fd(fd),
            device,
            timeout,
        }
    }

    /// Connects to swtpm's data port `host:port` (`--server type=tcp`) with
    /// `timeout` for connecting, each read and each write.
    ///
    /// # Errors
    ///
    /// [`Failure::Open`] naming the address.
    pub fn tcp(host: &str, port: u16, timeout: Duration) -> Result<Self, TransportError> {
        let host = host.to_owned();
        open(&TpmDevice::Tcp { host, port }, timeout)
    }

    /// Connects to the Microsoft/IBM simulator's TPM port `port` and platform
    /// port `port + 1` on `host` (tpm2-tss's `mssim:host=H,port=P`), as [`open`].
    ///
    /// # Errors
    ///
    /// As [`open`].
    pub fn mssim(host: &str, port: u16, timeout: Duration) -> Result<Self, TransportError> {
        let host = host.to_owned();
        open(&TpmDevice::Mssim { host, port }, timeout)
    }
}

/// A TCP connection to `host:port` (the first address that answers) with
/// the timeout for connecting, each read and each write, no Nagle delay.
fn connect_stream(host: &str, port: u16, fail: &Fail<'_>) -> Result<TcpStream, TransportError> {
    let mut last = std::io::Error::new(ErrorKind::NotFound, "host resolves to no address");
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| fail.err(Failure::Open(e)))?;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, fail.timeout) {
            Ok(stream) => {
                let set = stream
                    .set_nodelay(true)
                    .and_then(|()| stream.set_read_timeout(Some(fail.timeout)))
                    .and_then(|()| stream.set_write_timeout(Some(fail.timeout)));
                return set.map(|()| stream).map_err(|e| fail.err(Failure::Open(e)));
            }
            Err(e) => last = e,
        }
    }
    Err(fail.err(Failure::Open(last)))
}

fn read_word(stream: &mut TcpStream, fail: &Fail<'_>) -> Result<u32, TransportError> {
    let mut w = [0u8; 4];
    stream
        .read_exact(&mut w)
        .map_err(|e| fail.stream("read", e))?;
    Ok(mssim::word(w))
}

/// Writes `command` whole, then polls and reads until the response's
/// declared size has arrived or the deadline passes.
fn fd_transact(
    fd: &OwnedFd,
    fail: &Fail<'_>,
    command: &[u8],
    response: &mut [u8],
) -> Result<usize, TransportError> {
    let deadline = Instant::now() + fail.timeout;
    let mut sent = 0usize;
    while let Some(rest) = command.get(sent..).filter(|r| !r.is_empty()) {
        match nix::unistd::write(fd.as_fd(), rest) {
            Ok(0) => return Err(fail.err(Failure::Closed)),
            Ok(n) => sent = sent.saturating_add(n),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(fail.err(Failure::Io("write", e.into()))),
        }
    }
    let mut got = 0usize;
    loop {
        let capacity = response.len();
        if let Some(size) = declared_size(response.get(..got).unwrap_or(&[])) {
            if size < HEADER || size > capacity {
                return Err(fail.bad_size(size, capacity));
            }
            if got >= size {
                return Ok(size);
            }
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(fail.err(Failure::Timeout(fail.timeout.as_secs())));
            }
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
            match nix::poll::poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) | Err(Errno::EINTR) => {}
                Ok(_) => break,
                Err(e) => return Err(fail.err(Failure::Io("poll", e.into()))),
            }
        }
        let Some(dst) = response.get_mut(got..).filter(|d| !d.is_empty()) else {
            return Err(fail.bad_size(got, capacity));
        };
        match nix::unistd::read(fd.as_fd(), dst) {
            Ok(0) => return Err(fail.err(Failure::Closed)),
            Ok(n) => got = got.saturating_add(n),
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            Err(e) => return Err(fail.err(Failure::Io("read", e.into()))),
        }
    }
}

/// Sends `command` on a TCP link (framed for the simulator) and reads the
/// response whose size the header (or the simulator's size word) declares.
fn stream_transact(
    stream: &mut TcpStream,
    mssim: bool,
    fail: &Fail<'_>,
    command: &[u8],
    response: &mut [u8],
) -> Result<usize, TransportError> {
    let capacity = response.len();
    let size = if mssim {
        let header = mssim::send_header(0, command.len())
            .ok_or_else(|| fail.bad_size(command.len(), u32::MAX as usize))?;
        let mut out = Vec::with_capacity(SEND_HEADER_SIZE + command.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(command);
        stream
            .write_all(&out)
            .map_err(|e| fail.stream("write", e))?;
        read_word(stream, fail)? as usize
    } else {
        stream
            .write_all(command)
            .map_err(|e| fail.stream("write", e))?;
        let header = response
            .get_mut(..HEADER)
            .ok_or_else(|| fail.bad_size(HEADER, 0))?;
        stream
            .read_exact(header)
            .map_err(|e| fail.stream("read", e))?;
        declared_size(header).unwrap_or(0)
    };
    // the simulator's size word counts the whole frame, swtpm's header is read
    let start = if mssim { 0 } else { HEADER };
    let body = response
        .get_mut(start..size)
        .filter(|_| size >= HEADER)
        .ok_or_else(|| fail.bad_size(size, capacity))?;
    stream
        .read_exact(body)
        .map_err(|e| fail.stream("read", e))?;
    if mssim {
        read_word(stream, fail)?; // the acknowledgement
    }
    Ok(size)
}

impl Transport for TpmTransport {
    type Error = TransportError;

    fn transact(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, TransportError> {
        let fail = Fail {
            device: &self.device,
            cc: command_code(command),
            timeout: self.timeout,
        };
        match &mut self.link {
            Link::Fd(fd) => fd_transact(fd, &fail, command, response),
            Link::Tcp(stream) => stream_transact(stream, false, &fail, command, response),
            Link::Mssim { tpm, .. } => stream_transact(tpm, true, &fail, command, response),
        }
    }

    /// Sleeps before a retry the TPM asked for: 20 ms per attempt, at most 200 ms.
    fn backoff(&mut self, attempt: u32) {
        let ms = u64::from(attempt.min(10)).saturating_mul(20);
        std::thread::sleep(Duration::from_millis(ms));
    }
}

impl Drop for TpmTransport {
    fn drop(&mut self) {
        if let Link::Mssim { tpm, platform } = &mut self.link {
            let end = TPM_SESSION_END.to_be_bytes();
            let _ = tpm.write_all(&end);
            let _ = platform.write_all(&end);
        }
    }
}
