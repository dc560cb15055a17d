//! The TPM connection and its command/response buffers, owned together.

use std::sync::Arc;

use keylet_core::agent::{BUFFER_SIZE, Tpm};

use crate::metrics::{Metrics, Timed};
use crate::tpm::{self, TpmDevice, TpmTransport, TransportError};

/// One open TPM with the buffers every sequence borrows.
#[derive(Debug)]
pub struct TpmBox {
    device: TpmDevice,
    transport: TpmTransport,
    cmd: Box<[u8]>,
    rsp: Box<[u8]>,
    /// Times every TPM command when metrics are on.
    metrics: Option<Arc<Metrics>>,
}

impl TpmBox {
    /// Opens `device`.
    ///
    /// # Errors
    ///
    /// [`TransportError`] naming the device.
    pub fn open(device: TpmDevice) -> Result<Self, TransportError> {
        let transport = tpm::open(&device)?;
        Ok(Self {
            device,
            transport,
            cmd: vec![0; BUFFER_SIZE].into_boxed_slice(),
            rsp: vec![0; BUFFER_SIZE].into_boxed_slice(),
            metrics: None,
        })
    }

    /// The device this box talks to.
    #[must_use]
    pub fn device(&self) -> &TpmDevice {
        &self.device
    }

    /// Closes and reopens the connection (after the TPM went away).
    ///
    /// # Errors
    ///
    /// [`TransportError`] if it cannot be reopened.
    pub fn reopen(&mut self) -> Result<(), TransportError> {
        self.transport = tpm::open(&self.device)?;
        Ok(())
    }

    /// Times every later TPM command into `metrics`.
    pub fn set_metrics(&mut self, metrics: Arc<Metrics>) {
        self.metrics = Some(metrics);
    }

    /// The TPM, borrowing this box's transport and buffers.
    pub fn tpm(&mut self) -> Tpm<'_, Timed<'_>> {
        let transport = Timed::new(&mut self.transport, self.metrics.as_deref());
        Tpm::new(transport, &mut self.cmd, &mut self.rsp)
    }
}

/// The device to use: `tpm_device`/`TCTI` if given, else `/dev/tpmrm0` if it
/// exists, else `/dev/tpm0`.
///
/// # Errors
///
/// [`crate::tpm::DeviceError`] if the given value does not parse.
pub fn choose_device(configured: Option<&str>) -> Result<TpmDevice, crate::tpm::DeviceError> {
    if let Some(spec) = configured {
        return spec.parse();
    }
    let rm = std::path::Path::new("/dev/tpmrm0");
    Ok(TpmDevice::Path(if rm.exists() {
        rm.to_path_buf()
    } else {
        "/dev/tpm0".into()
    }))
}
