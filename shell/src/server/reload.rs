//! Certificates without downtime: the client CAs (`trusted_client_ca`) are
//! reloaded when their files change, and also keylet's own certificate and key
//! on SIGHUP, into the [`ServerTls`] slot: open connections keep their
//! configuration, new ones get the new one. A file that does not load is
//! reported and the running configuration stays.
//!
//! keylet's own server certificate is pinned by the verifier, so a changed
//! `server_cert` file is never picked up by the file watch: only an explicit
//! SIGHUP (after `keylet rotate-cert`) makes keylet serve it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::sync::mpsc;

use super::tls::{self, ServerTls, TlsError, TlsFiles};

/// How often the files are looked at by default.
pub(crate) const DEFAULT_POLL: Duration = Duration::from_secs(5);
/// How long a changed file must stay unchanged before it is read, so that a
/// file being written in place is not read half-done.
const SETTLE: Duration = Duration::from_millis(200);

/// What identifies one version of a file: device, inode, size and mtime.
/// `None` when the file cannot be looked at (then its loading reports why).
type Stamp = Option<(u64, u64, u64, i64, i64)>;

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

fn stamps(paths: &[PathBuf]) -> Vec<Stamp> {
    paths.iter().map(|p| stamp(p)).collect()
}

fn server_stamps(files: &TlsFiles) -> (Stamp, Stamp) {
    (stamp(&files.server_cert), stamp(&files.server_key))
}

/// Watches the TLS files of one [`ServerTls`] slot and reloads it.
#[derive(Debug)]
pub struct TlsReloader {
    tls: ServerTls,
    ca_seen: Vec<Stamp>,
    server_seen: (Stamp, Stamp),
    server_served: Option<Vec<u8>>,
}

impl TlsReloader {
    /// For `tls`, built from its files just now.
    #[must_use]
    pub fn new(tls: ServerTls) -> Self {
        let files = &tls.files;
        Self {
            ca_seen: stamps(&files.trusted_client_ca),
            server_seen: server_stamps(files),
            server_served: std::fs::read(&files.server_cert).ok(),
            tls,
        }
    }

    /// Reloads the client CAs if a CA file changed, and warns once if keylet's
    /// own certificate or key file changed (that needs SIGHUP).
    async fn poll(&mut self) {
        let server_now = server_stamps(&self.tls.files);
        if server_now != self.server_seen {
            self.server_seen = server_now;
            log::warn!(
                "{} or {} changed on disk; keylet keeps serving the certificate the verifier \
                 pinned until it gets SIGHUP (see keylet rotate-cert)",
                self.tls.files.server_cert.display(),
                self.tls.files.server_key.display()
            );
        }
        let mut now = stamps(&self.tls.files.trusted_client_ca);
        if now == self.ca_seen {
            return;
        }
        // Wait for the writer to finish: read only a file that stays put.
        loop {
            tokio::time::sleep(SETTLE).await;
            let again = stamps(&self.tls.files.trusted_client_ca);
            if again == now {
                break;
            }
            now = again;
        }
        self.ca_seen = now;
        let loaded = tls::with_client_cas(&self.tls.current(), &self.tls.files.trusted_client_ca);
        self.install(loaded, "a trusted_client_ca file changed");
    }

    /// Reloads the client CAs and keylet's own certificate and key (SIGHUP).
    fn reload_all(&mut self) {
        self.ca_seen = stamps(&self.tls.files.trusted_client_ca);
        self.server_seen = server_stamps(&self.tls.files);
        let loaded = tls::server_config(&self.tls.files);
        if loaded.is_ok() {
            let served = std::fs::read(&self.tls.files.server_cert).ok();
            if served != self.server_served {
                log::warn!(
                    "now serving the new server certificate {}: the verifier must be given it \
                     (keylime_tenant -c update -u <agent id>) or its polls fail",
                    self.tls.files.server_cert.display()
                );
                self.server_served = served;
            }
        }
        self.install(loaded, "SIGHUP");
    }

    /// Puts `loaded` in use for new connections, or logs why not.
    fn install(&self, loaded: Result<Arc<ServerConfig>, TlsError>, cause: &str) {
        match loaded {
            Ok(config) => {
                self.tls.replace(config);
                let cas = &self.tls.files.trusted_client_ca;
                let cas: Vec<_> = cas.iter().map(|p| p.display().to_string()).collect();
                log::info!(
                    "{cause}: TLS configuration reloaded (client CAs: {}); new connections use it",
                    cas.join(", ")
                );
            }
            Err(e) => log::error!(
                "{cause}: TLS reload rejected, the previous configuration stays in use: {e}"
            ),
        }
    }

    /// Polls every `interval` and reloads everything on SIGHUP.
    pub(crate) async fn run(self, interval: Duration) {
        use tokio::signal::unix::{SignalKind, signal};
        let (tx, requests) = mpsc::channel(1);
        match signal(SignalKind::hangup()) {
            Ok(mut hup) => drop(tokio::spawn(async move {
                while hup.recv().await.is_some() && tx.send(()).await.is_ok() {}
            })),
            Err(e) => log::warn!("cannot listen for SIGHUP ({e}); TLS files are only watched"),
        }
        self.run_with(interval, Some(requests)).await;
    }

    /// Polls every `interval` and reloads everything each time `reload`
    /// receives (a test reloads its own server without a process-wide
    /// signal); once `reload` ends, the files are only watched.
    pub async fn run_with(mut self, interval: Duration, mut reload: Option<mpsc::Receiver<()>>) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.poll().await,
                r = async { reload.as_mut()?.recv().await }, if reload.is_some() => match r {
                    Some(()) => self.reload_all(),
                    None => reload = None,
                },
            }
        }
    }
}
