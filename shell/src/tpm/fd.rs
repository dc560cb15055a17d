//! TPM over a file descriptor: a kernel TPM device node, an inherited
//! descriptor, or one end of a socketpair to `swtpm chardev`.
//!
//! One `write` of the whole command, then `poll` and `read` until the
//! response's declared size has arrived.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use keylet_core::tpm::transport::Transport;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;

use super::error::TransportError;
use super::frame::{self, HEADER};

/// A TPM reached through a file descriptor.
#[derive(Debug)]
pub struct FdTransport {
    fd: OwnedFd,
    device: String,
    timeout: Duration,
}

fn io(device: &str, cc: u32, op: &'static str, e: Errno) -> TransportError {
    TransportError::Io {
        device: device.to_owned(),
        cc,
        op,
        source: std::io::Error::from(e),
    }
}

impl FdTransport {
    /// Opens a TPM character device (`/dev/tpmrm0`, `/dev/tpm0`) read-write,
    /// close-on-exec.
    ///
    /// # Errors
    ///
    /// [`TransportError::Open`] naming the device.
    pub fn open(path: &Path, timeout: Duration) -> Result<Self, TransportError> {
        let device = path.display().to_string();
        let fd = nix::fcntl::open(path, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()).map_err(
            |e| TransportError::Open {
                device: device.clone(),
                source: std::io::Error::from(e),
            },
        )?;
        Ok(Self {
            fd,
            device,
            timeout,
        })
    }

    /// Uses an inherited descriptor `n` (`fd://N`). keylet forbids unsafe
    /// code, so the descriptor is reopened through `/proc/self/fd/N`: this
    /// works for a TPM character device, not for a socket.
    ///
    /// # Errors
    ///
    /// [`TransportError::Open`] if the descriptor is not open or cannot be reopened.
    pub(crate) fn from_inherited(n: i32, timeout: Duration) -> Result<Self, TransportError> {
        let mut t = Self::open(Path::new(&format!("/proc/self/fd/{n}")), timeout)?;
        t.device = format!("fd://{n}");
        Ok(t)
    }

    /// Uses a descriptor the process already owns (for example one end of a
    /// socketpair whose other end `swtpm chardev --fd` serves).
    #[must_use]
    pub fn from_owned(fd: OwnedFd, device: impl Into<String>, timeout: Duration) -> Self {
        Self {
            fd,
            device: device.into(),
            timeout,
        }
    }

    fn write_command(&self, command: &[u8], cc: u32) -> Result<(), TransportError> {
        let mut sent = 0usize;
        while let Some(rest) = command.get(sent..).filter(|r| !r.is_empty()) {
            match nix::unistd::write(self.fd.as_fd(), rest) {
                Ok(0) => {
                    return Err(TransportError::Closed {
                        device: self.device.clone(),
                        cc,
                    });
                }
                Ok(n) => sent = sent.saturating_add(n),
                Err(Errno::EINTR) => {}
                Err(e) => return Err(io(&self.device, cc, "write", e)),
            }
        }
        Ok(())
    }

    fn wait_readable(&self, cc: u32, deadline: Instant) -> Result<(), TransportError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(TransportError::Timeout {
                    device: self.device.clone(),
                    cc,
                    seconds: self.timeout.as_secs(),
                });
            }
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match nix::poll::poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) | Err(Errno::EINTR) => {}
                Ok(_) => return Ok(()),
                Err(e) => return Err(io(&self.device, cc, "poll", e)),
            }
        }
    }
}

impl Transport for FdTransport {
    type Error = TransportError;

    fn transact(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, TransportError> {
        let cc = frame::command_code(command);
        let deadline = Instant::now() + self.timeout;
        self.write_command(command, cc)?;
        let mut got = 0usize;
        loop {
            if let Some(size) = frame::declared_size(response.get(..got).unwrap_or(&[])) {
                if size < HEADER || size > response.len() {
                    return Err(TransportError::BadSize {
                        device: self.device.clone(),
                        cc,
                        size,
                        capacity: response.len(),
                    });
                }
                if got >= size {
                    return Ok(size);
                }
            }
            self.wait_readable(cc, deadline)?;
            let Some(dst) = response.get_mut(got..).filter(|d| !d.is_empty()) else {
                return Err(TransportError::BadSize {
                    device: self.device.clone(),
                    cc,
                    size: got,
                    capacity: response.len(),
                });
            };
            match nix::unistd::read(self.fd.as_fd(), dst) {
                Ok(0) => {
                    return Err(TransportError::Closed {
                        device: self.device.clone(),
                        cc,
                    });
                }
                Ok(n) => got = got.saturating_add(n),
                Err(Errno::EINTR | Errno::EAGAIN) => {}
                Err(e) => return Err(io(&self.device, cc, "read", e)),
            }
        }
    }

    fn backoff(&mut self, attempt: u32) {
        frame::backoff(attempt);
    }
}
