//! The one TPM transport over each link keylet supports. Every command goes
//! out whole and the response is read until its declared size has arrived;
//! errors name the device and the command in flight ([`Fail`]). A link can
//! be [watched](TpmTransport::watch) by the runtime: a command then waits for
//! its answer as a future, without holding a thread.

use keylet_core::tpm::transport::BlockOn as _;
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
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::stat::{Mode, SFlag, fstat};
use tokio::io::unix::AsyncFd;

use super::TpmDevice;
use super::error::{Fail, Failure, TransportError};

/// A link registered with the runtime, and whether it is a TPM character
/// device (which answers a read with 0 bytes while the response is not ready).
type Watch = (AsyncFd<OwnedFd>, bool);

/// A TPM: a character device or open descriptor, swtpm over TCP, or the
/// Microsoft/IBM simulator.
#[derive(Debug)]
pub struct TpmTransport {
    /// Set by [`TpmTransport::watch`].
    watch: Option<Watch>,
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
        watch: None,
        link,
        device: name.clone(),
        timeout,
    };
    if let Link::Mssim { platform, .. } = &mut t.link {
        for signal in [SIGNAL_POWER_ON, SIGNAL_NV_ON] {
            let sent = platform.write_all(&signal.to_be_bytes());
            sent.map_err(|e| fail.stream("write", e))?;
            let ack = read_word(platform, None, Instant::now() + timeout, &fail).block_on()?;
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
            watch: None,
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

    /// Lets each command wait for its answer on the runtime it is called in
    /// (the link non-blocking, registered with the runtime); whether it does.
    /// If not (a TPM device can be polled from Linux 4.20 on), each command
    /// blocks its thread while it waits.
    pub fn watch(&mut self) -> bool {
        let fd = match &self.link {
            Link::Fd(file) => file.as_fd(),
            Link::Tcp(stream) | Link::Mssim { tpm: stream, .. } => stream.as_fd(),
        };
        let nonblocking = |on: bool| {
            let mut flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
            flags.set(OFlag::O_NONBLOCK, on);
            fcntl(fd, FcntlArg::F_SETFL(flags))
        };
        // `AsyncFd::new` is deprecated for its lack of I/O safety; it watches
        // a duplicate it owns, so no other owner can close it under it.
        #[allow(deprecated)]
        let watched = (nonblocking(true).map_err(io::Error::from))
            .and_then(|_| fd.try_clone_to_owned())
            .and_then(AsyncFd::new)
            .inspect_err(|e| log::info!("TPM {}: each command holds a thread: {e}", self.device));
        let _ = nonblocking(watched.is_ok());
        let mode = fstat(fd).map(|s| SFlag::from_bits_truncate(s.st_mode) & SFlag::S_IFMT);
        let device = mode == Ok(SFlag::S_IFCHR);
        self.watch = watched.ok().map(|w| (w, device));
        self.watch.is_some()
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
/// most until `deadline` on the runtime when `watch`ed, else in `poll`.
async fn read_some(
    io: &mut (impl Read + AsFd),
    watch: Option<&Watch>,
    buf: &mut [u8],
    deadline: Instant,
    fail: &Fail<'_>,
) -> Result<usize, TransportError> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(fail.err(Failure::Timeout(fail.timeout.as_secs())));
        }
        let mut ready = None;
        if let Some((fd, _)) = watch {
            match tokio::time::timeout(left, fd.readable()).await {
                Ok(Ok(guard)) => ready = Some(guard),
                Ok(Err(e)) => return Err(fail.err(Failure::Io("poll", e))),
                Err(_) => continue,
            }
        } else {
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(io.as_fd(), PollFlags::POLLIN)];
            match nix::poll::poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) | Err(Errno::EINTR) => continue,
                Ok(_) => {}
                Err(e) => return Err(fail.err(Failure::Io("poll", e.into()))),
            }
        }
        let (device, read) = (watch.is_some_and(|(_, device)| *device), io.read(buf));
        // A TPM device node gives a response whole, in one read, and 0 bytes
        // before it is ready; after any read it waits for its next wake-up (a
        // read while the TPM works would wait for the TPM, holding the thread).
        if let Some(mut guard) = ready.filter(|_| device || !matches!(read, Ok(1..))) {
            guard.clear_ready();
        }
        match read {
            Ok(0) if device => {} // not answered yet
            Ok(0) => return Err(fail.err(Failure::Closed)),
            Ok(n) => return Ok(n),
            Err(e) if matches!(e.kind(), ErrorKind::Interrupted | ErrorKind::WouldBlock) => {}
            Err(e) => return Err(fail.err(Failure::Io("read", e))),
        }
    }
}

/// Reads one of the simulator's big-endian words.
async fn read_word(
    io: &mut (impl Read + AsFd),
    watch: Option<&Watch>,
    deadline: Instant,
    fail: &Fail<'_>,
) -> Result<u32, TransportError> {
    let mut w = [0u8; 4];
    let mut got = 0usize;
    while let Some(dst) = w.get_mut(got..).filter(|d| !d.is_empty()) {
        got = got.saturating_add(read_some(io, watch, dst, deadline, fail).await?);
    }
    Ok(mssim::word(w))
}

/// Writes `command` whole (framed for the simulator when `mssim`), then
/// reads until the response's declared size has arrived or the deadline
/// passes. The simulator sends the frame's size before it and an
/// acknowledgement after it. A watched link takes a command without waiting:
/// the TPM has answered the one before it.
async fn exchange(
    io: &mut (impl Read + Write + AsFd),
    (mssim, watch): (bool, Option<&Watch>),
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
        read_word(io, watch, deadline, fail).await? as usize
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
        got = got.saturating_add(read_some(io, watch, dst, deadline, fail).await?);
    };
    if mssim {
        read_word(io, watch, deadline, fail).await?; // the acknowledgement
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
        let watch = self.watch.as_ref();
        match &mut self.link {
            Link::Fd(file) => exchange(file, (false, watch), &fail, command, response).await,
            Link::Tcp(stream) => exchange(stream, (false, watch), &fail, command, response).await,
            Link::Mssim { tpm, .. } => exchange(tpm, (true, watch), &fail, command, response).await,
        }
    }

    /// Sleeps before a retry the TPM asked for: 20 ms per attempt, at most 200 ms.
    async fn backoff(&mut self, attempt: u32) {
        let wait = Duration::from_millis(u64::from(attempt.min(10)).saturating_mul(20));
        if self.watch.is_some() {
            tokio::time::sleep(wait).await;
        } else {
            std::thread::sleep(wait);
        }
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
