//! A small fake of the Microsoft/IBM TPM simulator's two ports for tests:
//! it speaks the simulator's socket protocol (tpm2-tss `mssim` TCTI) and
//! hands each framed command to a real swtpm behind it, recording what the
//! client did: platform signals, localities, command codes, session ends.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::fault_proxy::exchange;

/// What the client sent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Platform-port signals, in order.
    pub signals: Vec<u32>,
    /// (locality, command code) of each framed command.
    pub commands: Vec<(u8, u32)>,
    /// TPM_SESSION_END on the TPM port and on the platform port.
    pub session_ends: u32,
}

/// The fake simulator; its threads end when the client disconnects.
#[derive(Debug)]
pub struct MssimServer {
    /// The TPM port; the platform port is the next one.
    pub port: u16,
    seen: Arc<Mutex<Seen>>,
}

fn word(s: &mut TcpStream) -> io::Result<Option<u32>> {
    let mut w = [0u8; 4];
    match s.read_exact(&mut w) {
        Ok(()) => Ok(Some(u32::from_be_bytes(w))),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

fn two_free_ports() -> io::Result<(TcpListener, TcpListener)> {
    for _ in 0..50 {
        let a = TcpListener::bind(("127.0.0.1", 0))?;
        let port = a.local_addr()?.port();
        if let Some(next) = port.checked_add(1)
            && let Ok(b) = TcpListener::bind(("127.0.0.1", next))
        {
            return Ok((a, b));
        }
    }
    Err(io::Error::other("no two adjacent free loopback ports"))
}

impl MssimServer {
    /// Listens on two adjacent loopback ports and serves one client, whose
    /// commands go to swtpm's data port `swtpm_port`. `platform_ack` is the
    /// acknowledgement of each platform signal (0 is success).
    ///
    /// # Errors
    ///
    /// If no ports can be bound.
    pub fn start(swtpm_port: u16, platform_ack: u32) -> io::Result<Self> {
        let (tpm, platform) = two_free_ports()?;
        let port = tpm.local_addr()?.port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s = Arc::clone(&seen);
        std::thread::spawn(move || {
            let Ok((mut p, _)) = platform.accept() else {
                return;
            };
            while let Ok(Some(signal)) = word(&mut p) {
                let mut seen = s.lock().unwrap_or_else(PoisonError::into_inner);
                if signal == 20 {
                    seen.session_ends += 1;
                    return;
                }
                seen.signals.push(signal);
                drop(seen);
                if p.write_all(&platform_ack.to_be_bytes()).is_err() {
                    return;
                }
            }
        });
        let s = Arc::clone(&seen);
        std::thread::spawn(move || {
            let Ok((down, _)) = tpm.accept() else { return };
            if let Err(e) = serve_tpm(down, swtpm_port, &s) {
                eprintln!("mssim fake: {e}");
            }
        });
        Ok(Self { port, seen })
    }

    /// What the client sent so far.
    #[must_use]
    pub fn seen(&self) -> Seen {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

fn serve_tpm(mut down: TcpStream, swtpm_port: u16, seen: &Mutex<Seen>) -> io::Result<()> {
    let up = TcpStream::connect(("127.0.0.1", swtpm_port))?;
    up.set_read_timeout(Some(Duration::from_secs(60)))?;
    let up = Mutex::new(up);
    while let Some(code) = word(&mut down)? {
        if code == 20 {
            seen.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .session_ends += 1;
            return Ok(());
        }
        if code != 8 {
            return Err(io::Error::other(format!("unknown TPM-port code {code}")));
        }
        let mut locality = [0u8; 1];
        down.read_exact(&mut locality)?;
        let size = word(&mut down)?.ok_or_else(|| io::Error::other("no size"))?;
        let mut cmd = vec![0u8; size as usize];
        down.read_exact(&mut cmd)?;
        let cc = cmd
            .get(6..10)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_be_bytes);
        seen.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .commands
            .push((locality[0], cc));
        let rsp = exchange(&up, &cmd)?;
        let mut out = (rsp.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&rsp);
        out.extend_from_slice(&0u32.to_be_bytes());
        down.write_all(&out)?;
    }
    Ok(())
}
