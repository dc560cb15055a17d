//! keylet's agent API served in-process the way `keylet run` serves it once
//! registered (the same start-up steps, service, settings and stop), on
//! keylet's own runtime, without a registrar: for tests of the server
//! against a real TPM.

use keylet_core::tpm::transport::BlockOn as _;
use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use keylet::agent::{
    TpmAttestation, TpmBox, attestation, attestation_key, endorsement, resolve_identity, serve,
    server_settings,
};
use keylet::cli::{RUNTIME_STOP, runtime};
use keylet::config::{AgentConfig, IdentitySettings, RawConfig};
use keylet::keys::load_or_create_payload_key;
use keylet::metrics::{Metrics, serve as serve_metrics};
use keylet::server::IdentityListeners;
use tokio::sync::oneshot;

static INSTANCE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// A running in-process agent API; stopped when dropped.
#[derive(Debug)]
pub struct Agent {
    /// The agent API (plain HTTP).
    pub api: SocketAddr,
    /// The metrics listener.
    pub metrics: SocketAddr,
    /// The identity listener (loopback TCP).
    pub identity: SocketAddr,
    /// The quote service.
    pub service: Arc<TpmAttestation>,
    stop: Option<oneshot::Sender<()>>,
    done: mpsc::Receiver<()>,
    thread: Option<JoinHandle<()>>,
    dir: PathBuf,
}

impl Agent {
    /// Starts keylet's server on `tpm_device` (e.g. `tcp://127.0.0.1:PORT`)
    /// with the default configuration and `quote_deadline`: the EK, a new AK,
    /// the payload key, then serving on free loopback ports.
    ///
    /// # Errors
    ///
    /// Any start-up step's error.
    pub fn start(tpm_device: &str, quote_deadline: Duration) -> io::Result<Self> {
        Self::start_with(
            tpm_device,
            quote_deadline,
            Arc::new(Metrics::new(Vec::new())),
        )
    }

    /// [`Agent::start`] with the given `metrics` (e.g. watching certificate files).
    ///
    /// # Errors
    ///
    /// Any start-up step's error.
    pub fn start_with(
        tpm_device: &str,
        quote_deadline: Duration,
        metrics: Arc<Metrics>,
    ) -> io::Result<Self> {
        let n = INSTANCE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("keylet-agent-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let c = AgentConfig::from_raw(&RawConfig::default(), &mut Vec::new()).map_err(other)?;
        let mut tpm = TpmBox::open(tpm_device.parse().map_err(other)?).map_err(other)?;
        tpm.set_metrics(Arc::clone(&metrics));
        let objects = endorsement(&mut tpm, c.tpm_encryption_alg, None).map_err(other)?;
        let identity = resolve_identity(&c.uuid, &objects.ek_public, None).map_err(other)?;
        let (ak, state, _) = attestation_key(
            &mut tpm,
            &objects,
            None,
            &identity,
            c.tpm_encryption_alg,
            c.tpm_hash_alg,
            &dir.join("agent_data.json"),
        )
        .map_err(other)?;
        if objects.ek_transient {
            tpm.release(objects.ek.handle).block_on();
        }
        let payload = load_or_create_payload_key(&dir.join("payload.pem"), "").map_err(other)?;
        let service = Arc::new(attestation(
            &c,
            tpm,
            ak,
            &state,
            payload.public_pem().to_string(),
        ));

        let (addr_tx, addr_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (done_tx, done) = mpsc::channel();
        let served = Arc::clone(&service);
        let thread = std::thread::spawn(move || {
            let Some(rt) = runtime() else { return };
            let result = rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                let api = listener.local_addr()?;
                let m = serve_metrics("127.0.0.1:0".parse().map_err(other)?, Arc::clone(&metrics))
                    .await
                    .map_err(other)?;
                let identity = IdentityListeners::bind(&IdentitySettings {
                    listen: Some("127.0.0.1:0".parse().map_err(other)?),
                    ..IdentitySettings::default()
                })
                .await
                .map_err(other)?;
                let identity_addr = identity
                    .tcp_addr()
                    .ok_or_else(|| other("no identity addr"))?;
                let _ = addr_tx.send((api, m.local_addr(), identity_addr));
                let mut settings = server_settings(&c, None, Some(metrics));
                settings.limits.quote_deadline = quote_deadline;
                serve(Some(listener), identity, settings, served, async {
                    let _ = stop_rx.await;
                })
                .await;
                drop(m);
                Ok::<_, io::Error>(())
            });
            rt.shutdown_timeout(RUNTIME_STOP);
            if let Err(e) = result {
                eprintln!("agent: {e}");
            }
            let _ = done_tx.send(());
        });
        let (api, metrics, identity) = addr_rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| other("the agent did not start"))?;
        Ok(Self {
            api,
            metrics,
            identity,
            service,
            stop: Some(stop_tx),
            done,
            thread: Some(thread),
            dir,
        })
    }

    /// Sends the stop signal; how long until serving ended and the runtime
    /// was shut down (`None`: not within 30 s).
    pub fn stop(&mut self) -> Option<Duration> {
        let t0 = Instant::now();
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let ended = self.done.recv_timeout(Duration::from_secs(30)).ok();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        ended.map(|()| t0.elapsed())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One HTTP/1.1 GET with a 60 s read timeout: (status, body, time taken);
/// status 0 if the connection failed or closed without an answer.
#[must_use]
pub fn get(addr: SocketAddr, path: &str) -> (u16, String, Duration) {
    let t0 = Instant::now();
    let answer = (|| {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        Ok::<_, io::Error>(text)
    })();
    let took = t0.elapsed();
    let text = answer.unwrap_or_default();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body, took)
}

/// A counter's value in an OpenMetrics text (`name{labels} value` line).
#[must_use]
pub fn counter(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}
