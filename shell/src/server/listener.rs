//! The one accept loop of every listener (the agent port, the identity port
//! and the identity socket). A connection costs a small task and a socket
//! until its first byte (no TLS state yet), then goes through the TLS
//! handshake and its request head, then takes a serving slot (at most
//! `max_connections`) until its response is sent. Until then it is counted
//! in [`Pending`]: when that is full, the oldest waiting connection of the
//! busiest source makes room, so idle and slow clients never keep the
//! verifier out.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hyper::StatusCode;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio_rustls::TlsAcceptor;

use super::handlers::Handler;
use super::open_files;
use super::pending::{Pending, Source, Ticket};
use super::response;
use super::tls::ServerTls;
use crate::net::stream::{BoxStream, boxed};

/// Pause after a failed accept when no waiting connection can make room.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// The largest request head accepted (request line plus headers).
const MAX_HEADER_BYTES: usize = 16 * 1024;

pub(crate) trait Accept: Send + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn next_connection(&self) -> impl Future<Output = io::Result<Accepted<Self::Io>>> + Send;
    /// Resolves once `io` has something to read; an error if it ended first.
    fn first_byte(io: &Self::Io) -> impl Future<Output = io::Result<()>> + Send;
}

#[derive(Debug)]
pub(crate) struct Accepted<Io> {
    pub(crate) io: Io,
    pub(crate) source: Source,
    /// The peer as logs name it.
    pub(crate) peer: String,
    /// Why the peer is refused (its requests get 403 with this message).
    pub(crate) refusal: Option<String>,
}

impl Accept for TcpListener {
    type Io = TcpStream;

    async fn next_connection(&self) -> io::Result<Accepted<TcpStream>> {
        let (io, peer) = self.accept().await?;
        if let Err(e) = io.set_nodelay(true) {
            log::debug!("cannot set TCP_NODELAY for {peer}: {e}");
        }
        Ok(Accepted {
            io,
            source: Source::Ip(peer.ip()),
            peer: peer.to_string(),
            refusal: None,
        })
    }

    async fn first_byte(io: &TcpStream) -> io::Result<()> {
        match io.peek(&mut [0u8; 1]).await? {
            0 => Err(io::ErrorKind::UnexpectedEof.into()),
            _ => Ok(()),
        }
    }
}

/// What every connection of one listener shares.
struct Shared {
    handler: Arc<Handler>,
    serving: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
    /// Dropped with the last connection: the accept loop's `recv()` ends then.
    _alive: mpsc::Sender<()>,
}

/// Accepts connections on `listener` until `shutdown` completes, then lets the
/// open connections finish their current request (for at most
/// `limits.shutdown_grace`), with the TLS and limits of the handler's settings.
pub(crate) async fn accept_loop<L: Accept>(
    listener: L,
    handler: Arc<Handler>,
    shutdown: impl Future<Output = ()>,
) {
    let limits = handler.settings.limits;
    let pending = Pending::new(
        limits
            .max_pending
            .unwrap_or_else(open_files::pending_budget),
    );
    log::info!(
        "up to {} connections may wait for their first byte, TLS handshake and request \
         (limit on open files: {}); {} are served at once",
        pending.cap(),
        open_files::open_files_limit(),
        limits.max_connections.max(1)
    );
    let (stop_tx, stop) = watch::channel(false);
    let (_alive, mut alive_rx) = mpsc::channel::<()>(1);
    let shared = Arc::new(Shared {
        handler,
        serving: Arc::new(Semaphore::new(limits.max_connections.max(1))),
        stop,
        _alive,
    });
    let mut full_logged = false;
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            a = listener.next_connection() => a,
        };
        let accepted = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Most likely out of file descriptors: a waiting connection
                // makes room, or, with none, wait a little.
                log::warn!("accepting a connection failed: {e}");
                if pending.evict_oldest().is_some() {
                    tokio::task::yield_now().await;
                } else {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
                continue;
            }
        };
        let (ticket, evicted, victim) = pending.admit(accepted.source);
        if let Some(victim) = victim {
            if full_logged {
                log::debug!("dropped a waiting connection from {victim} to make room");
            } else {
                full_logged = true;
                log::warn!(
                    "{} connections wait to be served, the most allowed: dropping the oldest \
                     waiting connection of the busiest source for each new one (first: {victim})",
                    pending.cap()
                );
            }
        }
        tokio::spawn(connection::<L>(
            accepted,
            ticket,
            evicted,
            Arc::clone(&shared),
        ));
    }
    drop(listener);
    log::info!("server stopping; letting open connections finish");
    // Ignore the error: it only means no connection is listening.
    let _ = stop_tx.send(true);
    drop(shared);
    let grace = limits.shutdown_grace;
    if tokio::time::timeout(grace, alive_rx.recv()).await.is_err() {
        log::warn!(
            "requests still open {grace:?} after the stop signal (a TPM command hangs?); closing \
             them"
        );
    }
}

/// One connection, until it ends or is evicted while it waits.
async fn connection<L: Accept>(
    accepted: Accepted<L::Io>,
    ticket: Ticket,
    evicted: Arc<Notify>,
    shared: Arc<Shared>,
) {
    let Accepted {
        io, peer, refusal, ..
    } = accepted;
    let limit = shared.handler.settings.limits.first_byte_timeout;
    let mut stop = shared.stop.clone();
    tokio::select! {
        () = evicted.notified() => return,
        _ = stop.wait_for(|stopping| *stopping) => return,
        r = tokio::time::timeout(limit, L::first_byte(&io)) => match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return log::debug!("connection from {peer} failed: {e}"),
            Err(_) => return log::debug!("{peer} sent nothing within {limit:?}"),
        },
    }
    // Only now the (larger) TLS and HTTP state, boxed so that a waiting
    // connection's task stays small.
    let served = Box::pin(serve(boxed(io), peer, refusal, shared, ticket));
    tokio::select! {
        () = evicted.notified() => {}
        () = served => {}
    }
}

/// The TLS handshake (if any), then one request, answered with 403 and
/// `refusal` if the peer is refused; a serving slot is taken once its head is
/// complete (and held until the connection ends).
async fn serve(
    io: BoxStream,
    peer: String,
    refusal: Option<String>,
    shared: Arc<Shared>,
    ticket: Ticket,
) {
    let limits = shared.handler.settings.limits;
    let mut stop = shared.stop.clone();
    let io = match shared.handler.settings.tls.as_ref().map(ServerTls::current) {
        None => io,
        Some(config) => {
            let limit = limits.tls_handshake_timeout;
            let handshake = tokio::time::timeout(limit, TlsAcceptor::from(config).accept(io));
            tokio::select! {
                _ = stop.wait_for(|stopping| *stopping) => return,
                r = handshake => match r {
                    Ok(Ok(tls)) => boxed(tls),
                    Ok(Err(e)) => return log::info!("TLS handshake with {peer} failed: {e}"),
                    Err(_) => {
                        return log::info!(
                            "TLS handshake with {peer} did not finish within {limit:?}"
                        );
                    }
                },
            }
        }
    };
    let refusal: Option<Arc<str>> = refusal.map(Into::into);
    let slot = Arc::new(Mutex::new(None));
    let ticket = Arc::new(ticket);
    let service = service_fn(move |request| {
        let (refusal, slot, ticket) = (refusal.clone(), Arc::clone(&slot), Arc::clone(&ticket));
        let shared = Arc::clone(&shared);
        async move {
            if let Some(why) = refusal {
                ticket.served();
                return Ok::<_, Infallible>(response::error(StatusCode::FORBIDDEN, &why));
            }
            let Ok(permit) = Arc::clone(&shared.serving).acquire_owned().await else {
                return Ok(response::error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "keylet is stopping; retry later",
                ));
            };
            ticket.served();
            *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(permit);
            Ok(Arc::clone(&shared.handler).handle(request).await)
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(MAX_HEADER_BYTES)
        // One request per connection, as the verifier and tenant make them:
        // an idle keep-alive connection would hold one of the few serving
        // slots (limits.max_connections) until header_read_timeout.
        .keep_alive(false)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let finished = tokio::select! {
        r = conn.as_mut() => Some(r),
        _ = stop.wait_for(|stopping| *stopping) => None,
    };
    let result = match finished {
        Some(r) => r,
        None => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        log::debug!("connection from {peer} ended with an error: {e}");
    }
}

#[cfg(test)]
#[path = "listener_tests.rs"]
mod tests;
