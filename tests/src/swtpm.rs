//! swtpm for tests: a TCP server or a chardev on a socketpair, each with its
//! own copy of a manufactured TPM state (EKs and EK certificates in NV,
//! made once by `swtpm_setup` and cached), killed on drop.
//!
//! Also [`Recorder`], a transport wrapper that writes every frame as
//! `<cc-hex> <Command|Response> <hex>` lines (the format of
//! `core/tests/data/frames/*.txt`).

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use keylet::tpm::TpmTransport;
use keylet_core::keylime::hex::Lower;
use keylet_core::tpm::transport::Transport;

/// The PCR banks the manufactured TPM has.
pub const PCR_BANKS: &str = "sha1,sha256";

static INSTANCE: AtomicU32 = AtomicU32::new(0);

fn fresh_dir(kind: &str) -> io::Result<PathBuf> {
    let n = INSTANCE.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("keylet-{kind}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn run(cmd: &mut Command, what: &str) -> io::Result<()> {
    let out = cmd.output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

/// Manufactures a TPM state into `dir/state` with a private swtpm_setup and
/// swtpm-localca configuration (nothing under /etc or /var/lib is touched).
fn manufacture(dir: &Path) -> io::Result<()> {
    for sub in ["state", "localca", "ekcerts"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    let d = dir.display();
    std::fs::write(
        dir.join("swtpm-localca.conf"),
        format!(
            "statedir = {d}/localca\nsigningkey = {d}/localca/signkey.pem\n\
             issuercert = {d}/localca/issuercert.pem\ncertserial = {d}/localca/certserial\n"
        ),
    )?;
    std::fs::write(
        dir.join("swtpm-localca.options"),
        "--platform-manufacturer keylet-tests\n--platform-version 2.1\n--platform-model swtpm\n",
    )?;
    std::fs::write(
        dir.join("swtpm_setup.conf"),
        format!(
            "create_certs_tool = /usr/bin/swtpm_localca\n\
             create_certs_tool_config = {d}/swtpm-localca.conf\n\
             create_certs_tool_options = {d}/swtpm-localca.options\n\
             active_pcr_banks = {PCR_BANKS}\n"
        ),
    )?;
    run(
        Command::new("swtpm_setup")
            .arg("--tpm2")
            .arg("--tpm-state")
            .arg(dir.join("state"))
            .arg("--config")
            .arg(dir.join("swtpm_setup.conf"))
            .args(["--create-ek-cert", "--lock-nvram", "--pcr-banks", PCR_BANKS])
            .arg("--write-ek-cert-files")
            .arg(dir.join("ekcerts"))
            .arg("--overwrite")
            .arg("--logfile")
            .arg(dir.join("swtpm_setup.log")),
        "swtpm_setup",
    )
}

/// The manufactured TPM state, made once per test process (or reused from
/// an earlier run of the same user: it lives in the temp dir and is only
/// replaced atomically).
///
/// # Errors
///
/// If swtpm_setup fails.
pub fn manufactured() -> io::Result<&'static Path> {
    static STATE: OnceLock<PathBuf> = OnceLock::new();
    if let Some(p) = STATE.get() {
        return Ok(p);
    }
    let done = std::env::temp_dir().join("keylet-swtpm-manufactured-v1");
    if !done.join("state/tpm2-00.permall").is_file() {
        let work = fresh_dir("swtpm-setup")?;
        manufacture(&work)?;
        // Another test process may have won the race; either result is fine.
        if std::fs::rename(&work, &done).is_err() {
            let _ = std::fs::remove_dir_all(&work);
        }
    }
    Ok(STATE.get_or_init(|| done))
}

fn copy_state(into: &Path) -> io::Result<PathBuf> {
    let from = manufactured()?.join("state");
    let to = into.join("state");
    std::fs::create_dir_all(&to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(to)
}

/// The DER EK certificate swtpm_setup wrote for the RSA EK.
///
/// # Errors
///
/// If the manufactured state has none.
pub fn rsa_ek_cert_file() -> io::Result<PathBuf> {
    let dir = manufactured()?.join("ekcerts");
    for entry in std::fs::read_dir(&dir)? {
        let p = entry?.path();
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.is_some_and(|n| n.contains("rsa") && n.ends_with(".crt")) {
            return Ok(p);
        }
    }
    Err(io::Error::other(format!(
        "no RSA EK certificate in {}",
        dir.display()
    )))
}

#[derive(Debug)]
struct Process {
    child: Child,
    dir: PathBuf,
}

impl Drop for Process {
    fn drop(&mut self) {
        // A paused swtpm must run again to die of SIGKILL promptly.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `swtpm socket` on two free loopback ports (data P, control P+1).
#[derive(Debug)]
pub struct SwtpmTcp {
    /// The data port.
    pub port: u16,
    state: PathBuf,
    process: Process,
}

fn spawn_tcp(port: u16, state: &Path) -> io::Result<Child> {
    let mut cmd = Command::new("swtpm");
    cmd.args(["socket", "--tpm2", "--server"])
        .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
        .arg("--ctrl")
        .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1));
    spawn_swtpm(&mut cmd, state)
}

/// Adds the state directory and start-up flags to an swtpm command line and
/// starts it with no stdio.
fn spawn_swtpm(cmd: &mut Command, state: &Path) -> io::Result<Child> {
    cmd.arg("--tpmstate")
        .arg(format!("dir={}", state.display()))
        .args(["--flags", "not-need-init,startup-clear"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

fn wait_listening(port: u16) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(io::Error::other(format!("swtpm did not listen on {port}")));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn free_port_pair() -> io::Result<u16> {
    for _ in 0..50 {
        let l = TcpListener::bind(("127.0.0.1", 0))?;
        let port = l.local_addr()?.port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return Ok(port);
        }
    }
    Err(io::Error::other("no two adjacent free loopback ports"))
}

impl SwtpmTcp {
    /// Starts swtpm with a fresh copy of the manufactured state.
    ///
    /// # Errors
    ///
    /// If swtpm cannot be started or does not listen within 10 s.
    pub fn start() -> io::Result<Self> {
        let dir = fresh_dir("swtpm")?;
        let state = copy_state(&dir)?;
        let port = free_port_pair()?;
        let child = spawn_tcp(port, &state)?;
        let process = Process { child, dir };
        wait_listening(port)?;
        Ok(Self {
            port,
            state,
            process,
        })
    }

    /// Kills swtpm with SIGKILL (no TPM2_Shutdown: an unclean TPM reset, like
    /// a power loss) and starts it again on the same state and ports.
    ///
    /// # Errors
    ///
    /// If swtpm cannot be started again or does not listen within 10 s.
    pub fn kill_and_restart(&mut self) -> io::Result<()> {
        self.process.child.kill()?;
        self.process.child.wait()?;
        self.process.child = spawn_tcp(self.port, &self.state)?;
        wait_listening(self.port)
    }

    /// Freezes swtpm (SIGSTOP): connections stay open, commands hang.
    ///
    /// # Errors
    ///
    /// If the signal cannot be sent.
    pub fn pause(&self) -> io::Result<()> {
        self.signal(nix::sys::signal::Signal::SIGSTOP)
    }

    /// Lets a paused swtpm go on (SIGCONT).
    ///
    /// # Errors
    ///
    /// If the signal cannot be sent.
    pub fn resume(&self) -> io::Result<()> {
        self.signal(nix::sys::signal::Signal::SIGCONT)
    }

    /// Bytes sent to swtpm's data port that swtpm has not read yet (the
    /// receive queues of its connections, from `/proc/net/tcp`): while it is
    /// paused, more than 0 means a command waits at the TPM.
    ///
    /// # Errors
    ///
    /// If `/proc/net/tcp` cannot be read.
    pub fn unread_bytes(&self) -> io::Result<u64> {
        // Columns: sl, local (hex IPv4:port), remote, state (01 established),
        // tx_queue:rx_queue (hex), ...
        let local = format!("0100007F:{:04X}", self.port);
        let table = std::fs::read_to_string("/proc/net/tcp")?;
        Ok(table
            .lines()
            .skip(1)
            .filter_map(|line| {
                let cols: Vec<&str> = line.split_whitespace().collect();
                let (&addr, &state, &queues) = (cols.get(1)?, cols.get(3)?, cols.get(4)?);
                (addr == local && state == "01").then_some(())?;
                u64::from_str_radix(queues.split_once(':')?.1, 16).ok()
            })
            .sum())
    }

    fn signal(&self, signal: nix::sys::signal::Signal) -> io::Result<()> {
        let pid = i32::try_from(self.process.child.id()).map_err(io::Error::other)?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).map_err(io::Error::from)
    }

    /// A new TCP transport to this swtpm.
    ///
    /// # Errors
    ///
    /// If connecting fails.
    pub fn transport(&self) -> Result<TpmTransport, keylet::tpm::TransportError> {
        TpmTransport::tcp("127.0.0.1", self.port, Duration::from_secs(30))
    }
}

/// `swtpm chardev --fd N` serving one end of a socketpair; the other end is
/// the test's [`TpmTransport`].
#[derive(Debug)]
pub struct SwtpmChardev {
    transport: Option<TpmTransport>,
    _process: Process,
}

impl SwtpmChardev {
    /// Starts swtpm chardev with a fresh copy of the manufactured state.
    ///
    /// # Errors
    ///
    /// If the socketpair or swtpm cannot be created.
    pub fn start() -> io::Result<Self> {
        use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
        let dir = fresh_dir("swtpm-chardev")?;
        let state = copy_state(&dir)?;
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(io::Error::from)?;
        // dup() clears close-on-exec, so only this copy reaches swtpm.
        let inherited: OwnedFd = nix::unistd::dup(&theirs).map_err(io::Error::from)?;
        let mut cmd = Command::new("swtpm");
        cmd.args(["chardev", "--tpm2", "--fd"])
            .arg(inherited.as_raw_fd().to_string());
        let child = spawn_swtpm(&mut cmd, &state)?;
        drop(inherited);
        drop(theirs);
        Ok(Self {
            transport: Some(TpmTransport::from_owned(
                ours,
                "swtpm chardev socketpair",
                Duration::from_secs(30),
            )),
            _process: Process { child, dir },
        })
    }

    /// The transport (once).
    ///
    /// # Errors
    ///
    /// If it was already taken.
    pub fn take_transport(&mut self) -> io::Result<TpmTransport> {
        self.transport
            .take()
            .ok_or_else(|| io::Error::other("chardev transport already taken"))
    }
}

/// Records every frame that passes through `inner`.
#[derive(Debug)]
pub struct Recorder<T> {
    /// The wrapped transport.
    pub inner: T,
    /// `<cc-hex> <Command|Response> <hex>` lines.
    pub lines: Vec<String>,
    /// Whether to record right now.
    pub on: bool,
}

impl<T> Recorder<T> {
    /// Wraps `inner`, recording from the start.
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            lines: Vec::new(),
            on: true,
        }
    }
}

impl<T: Transport + Send> Transport for Recorder<T> {
    type Error = T::Error;

    async fn transact(&mut self, command: &[u8], response: &mut [u8]) -> Result<usize, T::Error> {
        let n = self.inner.transact(command, response).await?;
        if self.on {
            let cc = command
                .get(6..10)
                .map(|b| b.iter().fold(0u32, |a, x| (a << 8) | u32::from(*x)))
                .unwrap_or(0);
            self.lines
                .push(format!("{cc:08x} Command {}", Lower(command)));
            let rsp = response.get(..n).unwrap_or(&[]);
            self.lines.push(format!("{cc:08x} Response {}", Lower(rsp)));
        }
        Ok(n)
    }

    async fn backoff(&mut self, attempt: u32) {
        self.inner.backoff(attempt).await;
    }
}
