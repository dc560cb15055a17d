//! The TPM connection and its command/response buffers, owned together,
//! with the transient objects keylet created in it: they are flushed when
//! the box is dropped, so every exit path flushes them by construction.

use keylet_core::tpm::transport::BlockOn as _;
use std::sync::Arc;

use crate::secret::Secret;
use keylet_core::agent::{BUFFER_SIZE, Tpm};
use keylet_core::tpm::Handle;

use super::StartError;
use super::clock::ClockLease;
use crate::config::AgentConfig;
use crate::metrics::{Metrics, Timed};
use crate::tpm::{self, TpmDevice, TpmTransport, TransportError};

/// One open TPM with the buffers every sequence borrows and the objects it
/// flushes on drop.
#[derive(Debug)]
pub struct TpmBox {
    device: TpmDevice,
    transport: TpmTransport,
    cmd: Box<[u8]>,
    rsp: Box<[u8]>,
    /// Times every TPM command when metrics are on.
    metrics: Option<Arc<Metrics>>,
    /// Transient objects to flush on drop, oldest first.
    owned: Vec<Handle>,
    /// The TPM clock lease and the clock repair (`keylet run` only; see
    /// [`super::clock`]).
    pub(super) clock_lease: Option<ClockLease>,
    /// The endorsement hierarchy's password (`tpm_ownerpassword`).
    endorsement: Secret<Vec<u8>>,
    /// Whether commands wait on the runtime ([`TpmBox::watch`]).
    watched: bool,
}

impl TpmBox {
    /// Opens `device`; the error names it.
    pub fn open(device: TpmDevice) -> Result<Self, TransportError> {
        let transport = tpm::open(&device, tpm::DEFAULT_TIMEOUT)?;
        Ok(Self {
            device,
            transport,
            cmd: vec![0; BUFFER_SIZE].into_boxed_slice(),
            rsp: vec![0; BUFFER_SIZE].into_boxed_slice(),
            metrics: None,
            owned: Vec::new(),
            clock_lease: None,
            endorsement: Secret::default(),
            watched: false,
        })
    }

    /// Opens the TPM `c` names; `tpm_ownerpassword` authorizes its endorsement
    /// hierarchy (the EK, its Policy A sessions), as in the reference agent.
    pub(crate) fn configured(c: &AgentConfig) -> Result<Self, StartError> {
        let device = choose_device(c.tpm_device.as_deref()).map_err(StartError::Device)?;
        let mut tpm = Self::open(device).map_err(StartError::Open)?;
        tpm.endorsement = c.tpm_ownerpassword.clone();
        Ok(tpm)
    }

    pub(crate) fn device(&self) -> &TpmDevice {
        &self.device
    }

    /// Closes and reopens the connection (after the TPM went away), watched
    /// as the old one was. The objects of the old connection are gone (a
    /// resource manager flushed them) or left for `flush_leftovers`: none is
    /// flushed on drop any more.
    pub(crate) async fn reopen(&mut self) -> Result<(), TransportError> {
        let (device, shown) = (self.device.clone(), self.device.to_string());
        let open = move || tpm::open(&device, tpm::DEFAULT_TIMEOUT);
        self.transport = if self.watched {
            // Connecting may take the timeout: on tokio's blocking thread.
            let opened = tokio::task::spawn_blocking(open).await;
            opened.unwrap_or_else(|e| Err(TransportError::open(shown, e.to_string())))?
        } else {
            open()?
        };
        self.watched = self.watched && self.transport.watch();
        self.owned.clear();
        Ok(())
    }

    /// Lets commands wait on the runtime ([`TpmTransport::watch`]); whether they do.
    pub(crate) fn watch(&mut self) -> bool {
        self.watched = self.transport.watch();
        self.watched
    }

    pub fn set_metrics(&mut self, metrics: Arc<Metrics>) {
        self.metrics = Some(metrics);
    }

    /// The TPM, timed, borrowing this box's transport and buffers.
    pub fn tpm(&mut self) -> Tpm<'_, Timed<'_>> {
        let transport = Timed::new(&mut self.transport, self.metrics.as_deref());
        Tpm::new(transport, &mut self.cmd, &mut self.rsp)
            .with_endorsement_password(&self.endorsement)
    }

    /// Takes `handle` (a transient object keylet created) into the box: it
    /// is flushed when the box is dropped, unless [`release`](Self::release)d.
    pub fn own(&mut self, handle: Handle) {
        if !self.owned.contains(&handle) {
            self.owned.push(handle);
        }
    }

    /// Flushes `handle` now and stops owning it (logs a failure).
    pub async fn release(&mut self, handle: Handle) {
        self.owned.retain(|h| *h != handle);
        self.flush_logged(handle).await;
    }

    /// Flushes every owned object now, newest first.
    pub(crate) async fn flush_owned(&mut self) {
        while let Some(h) = self.owned.pop() {
            self.flush_logged(h).await;
        }
    }

    async fn flush_logged(&mut self, handle: Handle) {
        match self.tpm().flush(handle).await {
            Ok(()) => log::debug!("flushed TPM object {handle:#010x}"),
            Err(e) => log::warn!("could not flush TPM object {handle:#010x}: {e}"),
        }
    }
}

impl Drop for TpmBox {
    /// Flushes what is still owned, unless commands wait on the runtime: a
    /// drop cannot wait for it, and keylet's stop flushed as its last TPM job.
    fn drop(&mut self) {
        if !self.watched {
            self.flush_owned().block_on();
        }
    }
}

/// The device to use: `tpm_device`/`TCTI` if given (an error if it does not
/// parse), else `/dev/tpmrm0` if it exists, else `/dev/tpm0`.
pub fn choose_device(configured: Option<&str>) -> Result<TpmDevice, crate::tpm::DeviceError> {
    match configured {
        Some(spec) => spec.parse(),
        None if std::path::Path::new("/dev/tpmrm0").exists() => {
            Ok(TpmDevice::Path("/dev/tpmrm0".into()))
        }
        None => Ok(TpmDevice::Path("/dev/tpm0".into())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::mpsc;

    use super::*;

    const FLUSH_CONTEXT: u32 = 0x165;

    /// A TPM on loopback that answers every command with success and reports
    /// the handle of each FlushContext.
    fn fake_tpm() -> (TpmDevice, mpsc::Receiver<u32>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut header = [0u8; 10];
            while s.read_exact(&mut header).is_ok() {
                let size = u32::from_be_bytes(header[2..6].try_into().unwrap()) as usize;
                let mut rest = vec![0u8; size - 10];
                s.read_exact(&mut rest).unwrap();
                let cc = u32::from_be_bytes(header[6..10].try_into().unwrap());
                if cc == FLUSH_CONTEXT {
                    tx.send(u32::from_be_bytes(rest[..4].try_into().unwrap()))
                        .unwrap();
                }
                s.write_all(&[0x80, 0x01, 0, 0, 0, 10, 0, 0, 0, 0]).unwrap();
            }
        });
        let device = format!("tcp://127.0.0.1:{port}").parse().unwrap();
        (device, rx)
    }

    #[test]
    fn owned_objects_are_flushed_once_newest_first_on_every_path() {
        let (device, flushed) = fake_tpm();
        let mut tpm = TpmBox::open(device).unwrap();
        for h in [0x8000_0000, 0x8000_0001, 0x8000_0001, 0x8000_0002] {
            tpm.own(h);
        }
        assert_eq!(tpm.owned, [0x8000_0000, 0x8000_0001, 0x8000_0002]);
        tpm.release(0x8000_0000).block_on();
        assert_eq!(flushed.recv().unwrap(), 0x8000_0000);
        tpm.flush_owned().block_on();
        assert!(tpm.owned.is_empty());
        // an early return (a failed start-up step) drops the box: it flushes
        tpm.own(0x8000_0005);
        drop(tpm);
        let got: Vec<u32> = flushed.iter().collect();
        assert_eq!(
            got,
            [0x8000_0002, 0x8000_0001, 0x8000_0005],
            "newest first, none twice"
        );
    }
}
