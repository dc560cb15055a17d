//! The one TPM transport over each link keylet supports. Every command goes
//! out whole and the response is read until its declared size has arrived;
//! errors name the device and the command in flight ([`Fail`]).

use keylet_core::tpm::transport::BlockOn as _;
use std::fmt;
use std::fs::File;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use keylet_core::tpm::command;
use keylet_core::tpm::mssim::{self, SIGNAL_NV_ON, SIGNAL_POWER_ON, TPM_SESSION_END};
use keylet_core::tpm::response::{HEADER_SIZE as HEADER, command_code, declared_size};
use keylet_core::tpm::transport::Transport;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;

use super::TpmDevice;

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
    Fd(File),
    /// swtpm's TCP data port: raw frames. swtpm processes whatever it holds
    /// once 10 bytes have arrived, so a command goes out in one `write_all`.
    Tcp(TcpStream),
    /// The simulator's TPM port (framed commands) and platform port (signals).
    Mssim { tpm: TcpStream, platform: TcpStream },
}

/// Opens the TPM named by `device`, waiting at most `timeout` for each
/// response. The Microsoft/IBM simulator is powered on, its NV turned on
/// and sent TPM2_Startup(CLEAR) (already started is fine).
///
/// # Errors
///
/// [`Failure::Open`] naming the device if it cannot be opened, or an I/O,
/// timeout or size error of the simulator's set-up exchanges.
pub fn open(device: &TpmDevice, timeout: Duration) -> Result<TpmTransport, TransportError> {
    let name = device.to_string();
    let fail = Fail {
        device: &name,
        cc: 0,
        timeout,
    };
    let link = match device {
        TpmDevice::Path(path) => Link::Fd(open_file(path, &fail)?),
        // keylet forbids unsafe code, so an inherited descriptor is reopened
        // through /proc/self/fd/N: this works for a TPM character device,
        // not for a socket.
        TpmDevice::Fd(n) => Link::Fd(open_file(Path::new(&format!("/proc/self/fd/{n}")), &fail)?),
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
            let ack = read_word(platform, Instant::now() + timeout, &fail)?;
            if ack != 0 {
                let why = format!("the simulator answered platform signal {signal} with {ack}");
                return Err(fail.open(why));
            }
        }
        let (mut cmd, mut rsp) = ([0u8; 64], [0u8; 64]);
        let startup = command::startup_clear(&mut cmd).map_err(|e| fail.open(e.to_string()))?;
        let cc = command_code(startup);
        let n = t.transact(startup, &mut rsp).block_on()?;
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
fn open_file(path: &Path, fail: &Fail<'_>) -> Result<File, TransportError> {
    nix::fcntl::open(path, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
        .map(File::from)
        .map_err(|e| fail.err(Failure::Open(e.into())))
}

impl TpmTransport {
    /// Uses a descriptor the process already owns (for example one end of a
    /// socketpair whose other end `swtpm chardev --fd` serves).
    #[must_use]
    pub fn from_owned(fd: OwnedFd, device: impl Into<String>, timeout: Duration) -> Self {
        Self {
            link: Link::Fd(File::from(fd)),
            device: device.into(),
            timeout,
        }
    }

    /// [`open`] swtpm's data port `host:port` (`--server type=tcp`).
    ///
    /// # Errors
    ///
    /// As [`open`].
    pub fn tcp(host: &str, port: u16, timeout: Duration) -> Result<Self, TransportError> {
        let host = host.to_owned();
        open(&TpmDevice::Tcp { host, port }, timeout)
    }
}

/// A TCP connection to `host:port` (the first address that answers) with
/// the timeout for connecting and each write (reads wait in `poll`), no
/// Nagle delay.
fn connect_stream(host: &str, port: u16, fail: &Fail<'_>) -> Result<TcpStream, TransportError> {
    let mut last = io::Error::new(ErrorKind::NotFound, "host resolves to no address");
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| fail.err(Failure::Open(e)))?;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, fail.timeout) {
            Ok(stream) => {
                let set = stream
                    .set_nodelay(true)
                    .and_then(|()| stream.set_write_timeout(Some(fail.timeout)));
                return set.map(|()| stream).map_err(|e| fail.err(Failure::Open(e)));
            }
            Err(e) => last = e,
        }
    }
    Err(fail.err(Failure::Open(last)))
}

/// Reads what `io` has into `buf` (at least one byte), waiting for it at
/// most until `deadline`.
fn read_some(
    io: &mut (impl Read + AsFd),
    buf: &mut [u8],
    deadline: Instant,
    fail: &Fail<'_>,
) -> Result<usize, TransportError> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(fail.err(Failure::Timeout(fail.timeout.as_secs())));
        }
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(io.as_fd(), PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(fail.err(Failure::Io("poll", e.into()))),
        }
        match io.read(buf) {
            Ok(0) => return Err(fail.err(Failure::Closed)),
            Ok(n) => return Ok(n),
            Err(e) if matches!(e.kind(), ErrorKind::Interrupted | ErrorKind::WouldBlock) => {}
            Err(e) => return Err(fail.err(Failure::Io("read", e))),
        }
    }
}

/// Reads one of the simulator's big-endian words.
fn read_word(
    io: &mut (impl Read + AsFd),
    deadline: Instant,
    fail: &Fail<'_>,
) -> Result<u32, TransportError> {
    let mut w = [0u8; 4];
    let mut got = 0usize;
    while let Some(dst) = w.get_mut(got..).filter(|d| !d.is_empty()) {
        got = got.saturating_add(read_some(io, dst, deadline, fail)?);
    }
    Ok(mssim::word(w))
}

/// Writes `command` whole (framed for the simulator when `mssim`), then
/// reads until the response's declared size has arrived or the deadline
/// passes. The simulator sends the frame's size before it and an
/// acknowledgement after it.
fn exchange(
    io: &mut (impl Read + Write + AsFd),
    mssim: bool,
    fail: &Fail<'_>,
    command: &[u8],
    response: &mut [u8],
) -> Result<usize, TransportError> {
    let deadline = Instant::now() + fail.timeout;
    let capacity = response.len();
    let framed = if mssim {
        let header = mssim::send_header(0, command.len())
            .ok_or_else(|| fail.bad_size(command.len(), u32::MAX as usize))?;
        Some([&header[..], command].concat())
    } else {
        None
    };
    let sent = io.write_all(framed.as_deref().unwrap_or(command));
    sent.map_err(|e| fail.stream("write", e))?;
    // the simulator's size word counts the whole frame
    let limit = if mssim {
        read_word(io, deadline, fail)? as usize
    } else {
        capacity
    };
    if limit > capacity {
        return Err(fail.bad_size(limit, capacity));
    }
    let mut got = 0usize;
    let size = loop {
        if let Some(size) = declared_size(response.get(..got).unwrap_or(&[])) {
            if size < HEADER || size > limit || (mssim && size != limit) {
                return Err(fail.bad_size(size, capacity));
            }
            if got >= size {
                break size;
            }
        }
        let Some(dst) = response.get_mut(got..limit).filter(|d| !d.is_empty()) else {
            return Err(fail.bad_size(got, capacity));
        };
        got = got.saturating_add(read_some(io, dst, deadline, fail)?);
    };
    if mssim {
        read_word(io, deadline, fail)?; // the acknowledgement
    }
    Ok(size)
}

impl Transport for TpmTransport {
    type Error = TransportError;

    async fn transact(
        &mut self,
        command: &[u8],
        response: &mut [u8],
    ) -> Result<usize, TransportError> {
        let fail = Fail {
            device: &self.device,
            cc: command_code(command),
            timeout: self.timeout,
        };
        match &mut self.link {
            Link::Fd(file) => exchange(file, false, &fail, command, response),
            Link::Tcp(stream) => exchange(stream, false, &fail, command, response),
            Link::Mssim { tpm, .. } => exchange(tpm, true, &fail, command, response),
        }
    }

    /// Sleeps before a retry the TPM asked for: 20 ms per attempt, at most 200 ms.
    async fn backoff(&mut self, attempt: u32) {
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

/// A TPM transport failure.
#[derive(Debug)]
pub struct TransportError {
    /// The device as configured.
    pub(crate) device: String,
    /// The command code in flight (0 while opening).
    pub(crate) cc: u32,
    pub failure: Failure,
}

/// What went wrong on a TPM transport.
#[derive(Debug)]
#[non_exhaustive]
pub enum Failure {
    /// The device could not be opened or connected to: the OS error.
    Open(io::Error),
    /// `"write"`, `"read"` or `"poll"` failed with the OS error.
    Io(&'static str, io::Error),
    /// No complete response arrived within this many seconds.
    Timeout(u64),
    /// The peer closed the connection mid-response.
    Closed,
    /// The response header declares a `size` that is impossible or does not
    /// fit the response buffer's `capacity`.
    BadSize { size: usize, capacity: usize },
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { device, cc, .. } = self;
        match &self.failure {
            Failure::Open(source) => write!(
                f,
                "cannot open TPM {device}: {source} (check tpm_device, permissions of the device \
                 node, or that swtpm is running)"
            ),
            Failure::Io(op, source) => {
                write!(f, "TPM {device}: {op} failed for command {cc:#x}: {source}")
            }
            Failure::Timeout(seconds) => write!(
                f,
                "TPM {device}: no response to command {cc:#x} within {seconds} s"
            ),
            Failure::Closed => write!(
                f,
                "TPM {device} closed the connection while answering command {cc:#x}"
            ),
            Failure::BadSize { size, capacity } => write!(
                f,
                "TPM {device}: response to command {cc:#x} declares {size} bytes \
                 (buffer holds {capacity}, header needs 10)"
            ),
        }
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.failure {
            Failure::Open(source) | Failure::Io(_, source) => Some(source),
            _ => None,
        }
    }
}

/// Builds the errors of one command `cc` (0 while connecting) on one device.
struct Fail<'a> {
    device: &'a str,
    cc: u32,
    timeout: Duration,
}

impl Fail<'_> {
    fn err(&self, failure: Failure) -> TransportError {
        TransportError {
            device: self.device.to_owned(),
            cc: self.cc,
            failure,
        }
    }

    /// A set-up step failed for the reason `detail`.
    fn open(&self, detail: String) -> TransportError {
        self.err(Failure::Open(io::Error::other(detail)))
    }

    fn bad_size(&self, size: usize, capacity: usize) -> TransportError {
        self.err(Failure::BadSize { size, capacity })
    }

    /// A write error: a timeout, the peer taking no more bytes, or another
    /// failure of `op`.
    fn stream(&self, op: &'static str, e: io::Error) -> TransportError {
        self.err(match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => Failure::Timeout(self.timeout.as_secs()),
            ErrorKind::WriteZero => Failure::Closed,
            _ => Failure::Io(op, e),
        })
    }
}
