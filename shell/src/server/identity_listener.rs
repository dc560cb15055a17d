//! The local identity listener for SPIRE: plain HTTP on a loopback TCP port
//! (`identity_listen`) and/or a Unix socket (`identity_socket`, mode 0660,
//! peers admitted by `SO_PEERCRED` against an allow-list), serving only
//! `/version`, `/v2.x/agent/info` and `/v2.x/quotes/identity`, so the stock
//! SPIRE Keylime plugin can reach keylet while the main port keeps mandatory
//! mTLS. The router and [`Attestation`] service are the main port's, so
//! identity quotes queue behind the verifier's on the one TPM.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use tokio::net::{TcpListener, UnixListener, UnixStream};
use tokio::sync::Notify;

use super::handlers::Handler;
use super::listener::{self, Accept, Accepted};
use super::pending::Source;
use super::{Attestation, ServerSettings};
use crate::config::IdentitySettings;

/// Connections that may wait on each identity listener: few, as its clients
/// are local (SPIRE's agent).
const IDENTITY_PENDING: usize = 64;

/// The bound identity endpoints, made before privileges are dropped.
#[derive(Debug)]
pub struct IdentityListeners {
    tcp: Option<TcpListener>,
    unix: Option<(AdmittingSocket, PathBuf)>,
}

impl IdentityListeners {
    /// Binds what `settings` asks for, replacing a stale socket file; the
    /// socket gets mode 0660 and the first of `identity_allow_gids`, if any.
    ///
    /// # Errors
    ///
    /// Why the identity listener could not start: the option, the address or
    /// path, what went wrong and what to do.
    pub async fn bind(settings: &IdentitySettings) -> io::Result<Self> {
        let tcp = match settings.listen {
            Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| {
                io::Error::other(format!(
                    "identity_listen: cannot listen on {addr}: {e} (pick a free loopback port)"
                ))
            })?),
            None => None,
        };
        let unix = match &settings.socket {
            Some(path) => {
                let socket = bind_socket(path, settings.allow_gids.first().copied())?;
                let (uids, gids) = (settings.allow_uids.clone(), settings.allow_gids.clone());
                Some((AdmittingSocket { socket, uids, gids }, path.clone()))
            }
            None => None,
        };
        Ok(Self { tcp, unix })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.tcp.is_none() && self.unix.is_none()
    }

    #[must_use]
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().and_then(|l| l.local_addr().ok())
    }
}

fn bind_socket(path: &Path, group: Option<u32>) -> io::Result<UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let err =
        |detail: String| io::Error::other(format!("identity_socket {}: {detail}", path.display()));
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

/// Serves the identity endpoints until `shutdown` completes, then removes the
/// socket file.
pub async fn serve_identity(
    listeners: IdentityListeners,
    mut settings: ServerSettings,
    service: Arc<dyn Attestation>,
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
) {
    settings.tls = None;
    settings.limits.max_pending = Some(IDENTITY_PENDING);
    let handler = Arc::new(Handler {
        service,
        settings,
        identity_only: true,
    });
    // notify_waiters reaches every wait taken before it: tokio::join! polls
    // the loops (which take theirs at once) before the shutdown.
    let stop = Notify::new();
    let tcp = async {
        if let Some(tcp) = listeners.tcp {
            if let Ok(addr) = tcp.local_addr() {
                log::info!(
                    "serving identity quotes for SPIRE over plain HTTP on {addr} (loopback)"
                );
            }
            listener::accept_loop(tcp, Arc::clone(&handler), stop.notified()).await;
        }
    };
    let unix = async {
        if let Some((socket, path)) = listeners.unix {
            let shown = path.display();
            log::info!("serving identity quotes for SPIRE on the Unix socket {shown}");
            listener::accept_loop(socket, Arc::clone(&handler), stop.notified()).await;
            if let Err(e) = std::fs::remove_file(&path) {
                log::debug!("could not remove {shown}: {e}");
            }
        }
    };
    let stopping = async {
        shutdown.await;
        stop.notify_waiters();
    };
    tokio::join!(tcp, unix, stopping);
}

/// The identity socket: each peer's credentials are checked against the
/// allow-list (keylet's own uid, these uids and primary gids); a refused
/// peer's request is answered with 403.
#[derive(Debug)]
struct AdmittingSocket {
    socket: UnixListener,
    uids: Vec<u32>,
    gids: Vec<u32>,
}

impl Accept for AdmittingSocket {
    type Io = UnixStream;

    async fn next_connection(&self) -> io::Result<Accepted<UnixStream>> {
        let (io, _) = self.socket.accept().await?;
        Ok(self.admit(io))
    }

    fn first_byte(io: &UnixStream) -> impl Future<Output = io::Result<()>> + Send {
        io.readable()
    }
}

impl AdmittingSocket {
    /// The accepted peer, with the reason it is refused if it is.
    fn admit(&self, io: UnixStream) -> Accepted<UnixStream> {
        let (uid, peer, refusal) = match io.peer_cred() {
            Err(e) => {
                log::warn!("identity socket: cannot read the peer's credentials: {e}");
                let why =
                    format!("Forbidden: cannot read the peer's credentials on this socket ({e})");
                (u32::MAX, "an unknown peer".into(), Some(why))
            }
            Ok(c) => {
                let (uid, gid) = (c.uid(), c.gid());
                let peer = format!("uid {uid} gid {gid} pid {}", c.pid().unwrap_or(0));
                let admitted = uid == nix::unistd::geteuid().as_raw()
                    || self.uids.contains(&uid)
                    || self.gids.contains(&gid);
                let refusal = (!admitted).then(|| {
                    log::warn!(
                        "identity socket: refused a peer with {peer}: not in \
                         identity_allow_uids / identity_allow_gids"
                    );
                    format!(
                        "Forbidden: uid {uid} / gid {gid} is not allowed on this socket \
                         (identity_allow_uids, identity_allow_gids)"
                    )
                });
                (uid, peer, refusal)
            }
        };
        let source = Source::Uid(uid);
        Accepted {
            io,
            source,
            peer,
            refusal,
        }
    }
}
