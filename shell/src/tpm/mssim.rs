//! The Microsoft/IBM TPM simulator (tpm2-tss's `mssim:host=H,port=P`
//! TCTI): each command framed with `TPM_SEND_COMMAND`, locality 0 and its
//! size on the TPM port; power-on and NV-on signalled on the platform port
//! (TPM port + 1) when connecting, then TPM2_Startup(CLEAR) (already started
//! is fine). The byte layouts are core's (`keylet_core::tpm::mssim`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use keylet_core::tpm::command;
use keylet_core::tpm::mssim::{
    self, SEND_HEADER_SIZE, SIGNAL_NV_ON, SIGNAL_POWER_ON, TPM_SESSION_END,
};
use keylet_core::tpm::transport::Transport;

use super::error::TransportError;
use super::frame;
use super::tcp::{connect_stream, map_io};

/// A TPM simulator reached over its two TCP ports.
#[derive(Debug)]
pub struct MssimTransport {
    tpm: TcpStream,
    platform: TcpStream,
    device: String,
    timeout: Duration,
}

impl MssimTransport {
    /// Connects to the TPM port `port` and the platform port `port + 1` of
    /// `host`, powers the TPM on, turns NV on and starts it.
    ///
    /// # Errors
    ///
    /// [`TransportError::Open`] naming the address when a port refuses, or
    /// an I/O, timeout or size error of the set-up exchanges.
    pub fn connect(host: &str, port: u16, timeout: Duration) -> Result<Self, TransportError> {
        let device = format!("mssim:host={host},port={port}");
        let platform_port = port.checked_add(1).ok_or_else(|| TransportError::Open {
            device: device.clone(),
            source: std::io::Error::other("the platform port would be 65536"),
        })?;
        let tpm = connect_stream(host, port, timeout, &device)?;
        let platform = connect_stream(host, platform_port, timeout, &device)?;
        let mut t = Self {
            tpm,
            platform,
            device,
            timeout,
        };
        t.signal(SIGNAL_POWER_ON)?;
        t.signal(SIGNAL_NV_ON)?;
        let mut cmd = [0u8; 64];
        let mut rsp = [0u8; 64];
        let startup = command::startup_clear(&mut cmd).map_err(|e| t.setup_error(e.to_string()))?;
        let cc = frame::command_code(startup);
        let n = t.transact(startup, &mut rsp)?;
        if !mssim::startup_done(rsp.get(..n).unwrap_or(&[])) {
            return Err(t.setup_error(format!(
                "TPM2_Startup (command {cc:#x}) was refused after power-on"
            )));
        }
        Ok(t)
    }

    fn setup_error(&self, detail: String) -> TransportError {
        TransportError::Open {
            device: self.device.clone(),
            source: std::io::Error::other(detail),
        }
    }

    fn read_word(&mut self, on_tpm: bool, cc: u32) -> Result<u32, TransportError> {
        let mut w = [0u8; 4];
        let stream = if on_tpm {
            &mut self.tpm
        } else {
            &mut self.platform
        };
        let r = stream.read_exact(&mut w);
        r.map_err(|e| map_io(&self.device, self.timeout, cc, "read", e))?;
        Ok(mssim::word(w))
    }

    /// Sends one platform signal and checks its acknowledgement.
    fn signal(&mut self, signal: u32) -> Result<(), TransportError> {
        let r = self.platform.write_all(&signal.to_be_bytes());
        r.map_err(|e| map_io(&self.device, self.timeout, 0, "write", e))?;
        match self.read_word(false, 0)? {
            0 => Ok(()),
            ack => Err(self.setup_error(format!(
                "the simulator answered platform signal {signal} with {ack}"
            ))),
        }
    }
}

impl Transport for MssimTransport {
    type Error = TransportError;

    fn transact(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, TransportError> {
        let cc = frame::command_code(command);
        let bad_size = |size: usize, capacity: usize, device: &str| TransportError::BadSize {
            device: device.to_owned(),
            cc,
            size,
            capacity,
        };
        let header = mssim::send_header(0, command.len())
            .ok_or_else(|| bad_size(command.len(), u32::MAX as usize, &self.device))?;
        let mut out = Vec::with_capacity(SEND_HEADER_SIZE + command.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(command);
        let w = self.tpm.write_all(&out);
        w.map_err(|e| map_io(&self.device, self.timeout, cc, "write", e))?;
        let size = self.read_word(true, cc)? as usize;
        let capacity = response.len();
        let body = response
            .get_mut(..size)
            .filter(|_| size >= frame::HEADER)
            .ok_or_else(|| bad_size(size, capacity, &self.device))?;
        let r = self.tpm.read_exact(body);
        r.map_err(|e| map_io(&self.device, self.timeout, cc, "read", e))?;
        self.read_word(true, cc)?; // the acknowledgement
        Ok(size)
    }

    fn backoff(&mut self, attempt: u32) {
        frame::backoff(attempt);
    }
}

impl Drop for MssimTransport {
    fn drop(&mut self) {
        let end = TPM_SESSION_END.to_be_bytes();
        let _ = self.tpm.write_all(&end);
        let _ = self.platform.write_all(&end);
    }
}
