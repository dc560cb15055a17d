//! A fault-injecting TPM transport for tests: a TCP proxy between keylet's
//! `tcp://` transport and swtpm that answers chosen commands with faults
//! (RETRY/YIELDED/TESTING bursts, slow answers, a connection dropped
//! mid-frame, garbage frames) and passes everything else through.
//!
//! Each downstream connection gets its own upstream connection to swtpm, as
//! keylet's reconnect expects. [`FaultProxy::transient_handles`] asks swtpm
//! through the live connection which transient objects exist.

use keylet_core::tpm::transport::BlockOn as _;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use keylet_core::agent::{BUFFER_SIZE, Tpm};
use keylet_core::tpm::capability::{self, CAP_HANDLES, HANDLES_TRANSIENT};
use keylet_core::tpm::command;
use keylet_core::tpm::transport::Transport;

/// TPM2_Quote's command code.
pub const CC_QUOTE: u32 = 0x158;

/// What the proxy does to one command of the targeted code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answers with this response code itself; swtpm never sees the command.
    Rc(u32),
    /// Forwards, then holds swtpm's answer this long before sending it.
    Slow(Duration),
    /// Forwards, sends half of the answer, then closes the connection.
    DropMidFrame,
    /// Forwards, answers with a header declaring 4 bytes, then closes.
    BadSize,
    /// Forwards, answers with noise of the right length (a well-framed
    /// success code with a nonsense body).
    Noise,
}

#[derive(Debug, Default)]
struct Plan {
    target: u32,
    faults: VecDeque<Fault>,
    /// The upstream of the connection being served, for inspection.
    upstream: Option<Arc<Mutex<TcpStream>>>,
}

/// The proxy; stops its threads when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    /// The loopback port keylet connects to (`tcp://127.0.0.1:PORT`).
    pub port: u16,
    plan: Arc<Mutex<Plan>>,
    connections: Arc<AtomicU32>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One frame (header, then the size it declares) from `s`; `None` at EOF.
///
/// # Errors
///
/// On I/O errors or a size outside 10..=4096.
pub fn read_frame(s: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let mut frame = vec![0u8; 10];
    match s.read_exact(&mut frame) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let size = frame
        .get(2..6)
        .and_then(|b| b.try_into().ok())
        .map_or(0, |b| u32::from_be_bytes(b) as usize);
    if !(10..=BUFFER_SIZE).contains(&size) {
        return Err(io::Error::other(format!("frame size {size}")));
    }
    frame.resize(size, 0);
    s.read_exact(frame.get_mut(10..).unwrap_or(&mut []))?;
    Ok(Some(frame))
}

/// Sends `cmd` to swtpm and reads its answer.
///
/// # Errors
///
/// On I/O errors, or when swtpm closes the connection.
pub fn exchange(upstream: &Mutex<TcpStream>, cmd: &[u8]) -> io::Result<Vec<u8>> {
    let mut up = lock(upstream);
    up.write_all(cmd)?;
    read_frame(&mut up)?.ok_or_else(|| io::Error::other("swtpm closed the connection"))
}

/// A response frame of just a header with response code `rc`.
#[must_use]
pub fn rc_frame(rc: u32) -> Vec<u8> {
    let mut f = vec![0x80, 0x01, 0, 0, 0, 10];
    f.extend_from_slice(&rc.to_be_bytes());
    f
}

/// Serves one keylet connection; returns when either side closes or a fault
/// closes it.
fn serve(mut down: TcpStream, swtpm_port: u16, plan: &Mutex<Plan>) -> io::Result<()> {
    let up = TcpStream::connect(("127.0.0.1", swtpm_port))?;
    up.set_read_timeout(Some(Duration::from_secs(120)))?;
    let upstream = Arc::new(Mutex::new(up));
    lock(plan).upstream = Some(Arc::clone(&upstream));
    let mut seed: u32 = 0x2545_f491;
    while let Some(cmd) = read_frame(&mut down)? {
        let cc = cmd
            .get(6..10)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_be_bytes);
        let fault = {
            let mut p = lock(plan);
            if cc == p.target {
                p.faults.pop_front()
            } else {
                None
            }
        };
        match fault {
            None => down.write_all(&exchange(&upstream, &cmd)?)?,
            Some(Fault::Rc(rc)) => down.write_all(&rc_frame(rc))?,
            Some(Fault::Slow(d)) => {
                let rsp = exchange(&upstream, &cmd)?;
                std::thread::sleep(d);
                down.write_all(&rsp)?;
            }
            Some(Fault::DropMidFrame) => {
                let rsp = exchange(&upstream, &cmd)?;
                down.write_all(rsp.get(..rsp.len() / 2).unwrap_or(&[]))?;
                return Ok(());
            }
            Some(Fault::BadSize) => {
                exchange(&upstream, &cmd)?;
                down.write_all(&[0x80, 0x01, 0, 0, 0, 4, 0, 0, 0, 0])?;
                return Ok(());
            }
            Some(Fault::Noise) => {
                let mut rsp = exchange(&upstream, &cmd)?;
                for b in rsp.iter_mut().skip(10) {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    *b = seed.to_le_bytes()[0];
                }
                down.write_all(&rsp)?;
            }
        }
    }
    Ok(())
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to swtpm's data port.
    ///
    /// # Errors
    ///
    /// If no port can be bound.
    pub fn start(swtpm_port: u16) -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let plan = Arc::new(Mutex::new(Plan::default()));
        let connections = Arc::new(AtomicU32::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (plan, connections, stop) = (
                Arc::clone(&plan),
                Arc::clone(&connections),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((down, _)) => {
                            connections.fetch_add(1, Ordering::SeqCst);
                            let plan = Arc::clone(&plan);
                            std::thread::spawn(move || {
                                let _ = down.set_nonblocking(false);
                                if let Err(e) = serve(down, swtpm_port, &plan) {
                                    eprintln!("fault proxy: connection ended: {e}");
                                }
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        Ok(Self {
            port,
            plan,
            connections,
            stop,
            acceptor: Some(acceptor),
        })
    }

    /// Applies `faults` one each to the next commands with code `cc`
    /// (replacing any faults still queued).
    pub fn inject(&self, cc: u32, faults: impl IntoIterator<Item = Fault>) {
        let mut p = lock(&self.plan);
        p.target = cc;
        p.faults = faults.into_iter().collect();
    }

    /// Faults not yet applied.
    #[must_use]
    pub fn pending(&self) -> usize {
        lock(&self.plan).faults.len()
    }

    /// Connections accepted so far (a reconnect adds one).
    #[must_use]
    pub fn connections(&self) -> u32 {
        self.connections.load(Ordering::SeqCst)
    }

    /// The transient object handles swtpm holds, asked on the connection
    /// being served (between keylet's commands).
    ///
    /// # Errors
    ///
    /// If no connection is open or the TPM does not answer.
    pub fn transient_handles(&self) -> io::Result<Vec<u32>> {
        let upstream = lock(&self.plan)
            .upstream
            .clone()
            .ok_or_else(|| io::Error::other("no connection to swtpm"))?;
        let mut stream = lock(&upstream);
        let (mut cmd, mut rsp) = (vec![0u8; BUFFER_SIZE], vec![0u8; BUFFER_SIZE]);
        let mut tpm = Tpm::new(Stream(&mut stream), &mut cmd, &mut rsp);
        let r = tpm
            .execute(|b| command::get_capability(b, CAP_HANDLES, HANDLES_TRANSIENT, 64))
            .block_on()
            .map_err(|e| io::Error::other(e.to_string()))?;
        let cap = capability::read(r.parameters).map_err(|e| io::Error::other(format!("{e:?}")))?;
        Ok(cap.handles().filter(|h| h >> 24 == 0x80).collect())
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

/// A raw TPM transport over the proxy's own upstream connection.
struct Stream<'a>(&'a mut TcpStream);

impl Transport for Stream<'_> {
    type Error = io::Error;

    async fn transact(&mut self, command: &[u8], response: &mut [u8]) -> io::Result<usize> {
        self.0.write_all(command)?;
        let frame = read_frame(self.0)?.ok_or_else(|| io::Error::other("closed"))?;
        let n = frame.len();
        response
            .get_mut(..n)
            .ok_or_else(|| io::Error::other("response too large"))?
            .copy_from_slice(&frame);
        Ok(n)
    }
}
