//! The local identity listener for SPIRE: plain HTTP on a loopback TCP port
//! (`identity_listen`) and/or a Unix socket (`identity_socket`, mode 0660,
//! peers admitted by `SO_PEERCRED` against an allow-list), serving only
//! `/version`, `/v2.x/agent/info` and `/v2.x/quotes/identity` (everything else
//! is a 404). The stock SPIRE Keylime plugin can then reach keylet while the
//! main port keeps mandatory mTLS.
//!
//! Requests go through the same router and the same [`Attestation`] service
//! as the main port, so identity quotes queue behind the verifier's on the one
//! TPM instead of running beside them.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener, UnixStream};
use tokio::sync::{Semaphore, watch};

use super::handlers::Handler;
use super::{Attestation, Limits, ServerSettings, listener};
use crate::config::IdentitySettings;

/// Who may use the Unix socket: keylet's own uid, plus these uids and
/// primary gids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerAllowList {
    /// Admitted peer uids.
    pub uids: Vec<u32>,
    /// Admitted peer primary gids (as `SO_PEERCRED` reports them).
    pub gids: Vec<u32>,
}

impl PeerAllowList {
    /// Whether a peer with `uid` and `gid` is admitted.
    #[must_use]
    pub fn admits(&self, uid: u32, gid: u32) -> bool {
        uid == nix::unistd::geteuid().as_raw()
            || self.uids.contains(&uid)
            || self.gids.contains(&gid)
    }
}

/// Why the identity listener could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum IdentityListenerError {
    /// `identity_listen` could not be bound.
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// `identity_socket` could not be made.
    Socket {
        /// The socket path.
        path: PathBuf,
        /// What went wrong and what to do.
        detail: String,
    },
}

impl fmt::Display for IdentityListenerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bind { addr, source } => write!(
                f,
                "identity_listen: cannot listen on {addr}: {source} (pick a free loopback port)"
            ),
            Self::Socket { path, detail } => {
                write!(f, "identity_socket {}: {detail}", path.display())
            }
        }
    }
}

impl std::error::Error for IdentityListenerError {}

/// The bound identity endpoints, made before privileges are dropped.
#[derive(Debug)]
pub struct IdentityListeners {
    tcp: Option<TcpListener>,
    unix: Option<(UnixListener, PathBuf)>,
    allow: PeerAllowList,
}

impl IdentityListeners {
    /// Binds what `settings` asks for (nothing if neither option is set). A
    /// stale socket file from an earlier run is replaced; the socket gets mode
    /// 0660 and, if `identity_allow_gids` is set, its first group.
    ///
    /// # Errors
    ///
    /// [`IdentityListenerError`] naming the address or path.
    pub async fn bind(settings: &IdentitySettings) -> Result<Self, IdentityListenerError> {
        let tcp = match settings.listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| IdentityListenerError::Bind { addr, source })?,
            ),
            None => None,
        };
        let unix = match &settings.socket {
            Some(path) => Some((
                bind_socket(path, settings.allow_gids.first().copied())?,
                path.clone(),
            )),
            None => None,
        };
        Ok(Self {
            tcp,
            unix,
            allow: PeerAllowList {
                uids: settings.allow_uids.clone(),
                gids: settings.allow_gids.clone(),
            },
        })
    }

    /// Whether nothing is to be served.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tcp.is_none() && self.unix.is_none()
    }

    /// The bound TCP address, if any.
    #[must_use]
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().and_then(|l| l.local_addr().ok())
    }
}

fn bind_socket(path: &Path, group: Option<u32>) -> Result<UnixListener, IdentityListenerError> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let err = |detail: String| IdentityListenerError::Socket {
        path: path.to_path_buf(),
        detail,
    };
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path)
            .map_err(|e| err(format!("cannot remove the stale socket: {e}")))?,
        Ok(_) => {
            return Err(err(
                "exists and is not a socket; remove it or choose another path".into(),
            ));
        }
        Err(_) => {}
    }
    let listener = UnixListener::bind(path).map_err(|e| {
        err(format!(
            "cannot create the socket: {e} (does its directory exist and is it writable?)"
        ))
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| err(format!("cannot set mode 0660: {e}")))?;
    if let Some(gid) = group {
        nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(gid))).map_err(|e| {
            err(format!(
                "cannot give the socket to group {gid} (the first of identity_allow_gids): {e}"
            ))
        })?;
    }
    Ok(listener)
}

/// Serves the identity endpoints until `shutdown` completes, with the API
/// versions, boot time and limits of `settings` and the same `service` as the
/// main port. Removes the socket file at the end.
pub async fn serve_identity(
    listeners: IdentityListeners,
    settings: ServerSettings,
    service: Arc<dyn Attestation>,
    shutdown: impl Future<Output = ()>,
) {
    let handler = Arc::new(Handler {
        service,
        versions: settings.versions,
        ima_log: None,
        mb_log: None,
        boottime: settings.boottime,
        identity_only: true,
        metrics: settings.metrics.clone(),
        payload_keys: None,
        quote_deadline: settings.limits.quote_deadline,
    });
    let limits = settings.limits;
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        // An error means the sender is gone: stop as well.
        let _ = rx.wait_for(|s| *s).await;
    };
    let tcp = listeners.tcp.map(|tcp| {
        if let Ok(addr) = tcp.local_addr() {
            log::info!("serving identity quotes for SPIRE over plain HTTP on {addr} (loopback)");
        }
        tokio::spawn(listener::accept_loop(
            tcp,
            None,
            Arc::clone(&handler),
            limits,
            stopped(stop_rx.clone()),
        ))
    });
    let unix = listeners.unix.map(|(l, path)| {
        log::info!(
            "serving identity quotes for SPIRE on the Unix socket {}",
            path.display()
        );
        let task = tokio::spawn(unix_loop(
            l,
            listeners.allow.clone(),
            Arc::clone(&handler),
            limits,
            stop_rx.clone(),
        ));
        (task, path)
    });
    shutdown.await;
    // Ignore the error: it only means every loop has ended already.
    let _ = stop_tx.send(true);
    if let Some(t) = tcp {
        let _ = t.await;
    }
    if let Some((t, path)) = unix {
        let _ = t.await;
        if let Err(e) = std::fs::remove_file(&path) {
            log::debug!("could not remove {}: {e}", path.display());
        }
    }
}

async fn unix_loop(
    listener: UnixListener,
    allow: PeerAllowList,
    handler: Arc<Handler>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let max = limits.max_connections.max(1);
    let permits = Arc::new(Semaphore::new(max));
    loop {
        let permit = tokio::select! {
            () = stopping(&mut stop) => break,
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            () = stopping(&mut stop) => break,
            a = listener.accept() => match a {
                Ok((s, _)) => s,
                Err(e) => {
                    log::warn!("identity socket: accepting a connection failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let handler = Arc::clone(&handler);
        let allow = allow.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let (uid, gid, pid) = match stream.peer_cred() {
                Ok(c) => (c.uid(), c.gid(), c.pid().unwrap_or(0)),
                Err(e) => {
                    log::warn!("identity socket: cannot read the peer's credentials: {e}");
                    return;
                }
            };
            let peer = format!("uid {uid} gid {gid} pid {pid}");
            if allow.admits(uid, gid) {
                listener::serve_http(stream, peer, handler, limits, stop).await;
            } else {
                log::warn!(
                    "identity socket: refused a peer with {peer}: not in identity_allow_uids / \
                     identity_allow_gids"
                );
                refuse(stream, uid, gid).await;
            }
        });
    }
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(limits.shutdown_grace, permits.acquire_many(all)).await;
}

/// Resolves once a stop is signalled (or the sender is gone).
async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Answers a refused peer with a 403 and closes.
async fn refuse(mut stream: UnixStream, uid: u32, gid: u32) {
    let body = serde_json::json!({
        "code": 403,
        "status": format!(
            "Forbidden: uid {uid} / gid {gid} is not allowed on this socket (identity_allow_uids, identity_allow_gids)"
        ),
        "results": {},
    })
    .to_string();
    let head = format!(
        "HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    // Read what the client sent first so that closing does not reset the
    // connection before it reads the answer; bounded in size and time.
    let mut buf = [0u8; 4096];
    let _ =
        tokio::time::timeout(std::time::Duration::from_millis(500), stream.read(&mut buf)).await;
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}
