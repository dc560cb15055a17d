//! The accept loop: a bounded number of connections, TLS handshakes with a
//! deadline, HTTP/1.1 with a header-read deadline, and graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use super::Limits;
use super::handlers::Handler;
use super::tls::ServerTls;

/// Pause after a failed accept (e.g. out of file descriptors) before retrying.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// The largest request head accepted (request line plus headers).
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Accepts connections on `listener` until `shutdown` completes, then lets the
/// open connections finish their current request (for at most
/// `limits.shutdown_grace`).
pub(crate) async fn accept_loop(
    listener: TcpListener,
    tls: Option<ServerTls>,
    handler: Arc<Handler>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let max = limits.max_connections.max(1);
    let permits = Arc::new(Semaphore::new(max));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        // Take a connection slot first: beyond the limit, new connections
        // wait in the kernel's accept queue.
        let permit = tokio::select! {
            () = &mut shutdown => break,
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    log::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        if let Err(e) = stream.set_nodelay(true) {
            log::debug!("cannot set TCP_NODELAY for {peer}: {e}");
        }
        let config = tls.as_ref().map(ServerTls::current);
        tokio::spawn(connection(
            stream,
            peer,
            config,
            Arc::clone(&handler),
            limits,
            stop_rx.clone(),
            permit,
        ));
    }
    drop(listener);
    log::info!("server stopping; letting open connections finish");
    // Ignore the error: it only means no connection is listening.
    let _ = stop_tx.send(true);
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(limits.shutdown_grace, permits.acquire_many(all))
        .await
        .is_err()
    {
        log::warn!("some connections were still open after the shutdown grace period");
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<Arc<ServerConfig>>,
    handler: Arc<Handler>,
    limits: Limits,
    stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let Some(config) = tls else {
        return serve_http(stream, peer, handler, limits, stop).await;
    };
    let handshake = TlsAcceptor::from(config).accept(stream);
    match tokio::time::timeout(limits.tls_handshake_timeout, handshake).await {
        Ok(Ok(tls_stream)) => serve_http(tls_stream, peer, handler, limits, stop).await,
        Ok(Err(e)) => log::info!("TLS handshake with {peer} failed: {e}"),
        Err(_) => log::info!(
            "TLS handshake with {peer} did not finish within {:?}",
            limits.tls_handshake_timeout
        ),
    }
}

pub(super) async fn serve_http<S>(
    io: S,
    peer: impl std::fmt::Display,
    handler: Arc<Handler>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let handler = Arc::clone(&handler);
        async move { Ok::<_, Infallible>(handler.handle(request).await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(MAX_HEADER_BYTES)
        // One request per connection, as the verifier and tenant make them:
        // an idle keep-alive connection would hold one of the few connection
        // slots (limits.max_connections) until header_read_timeout.
        .keep_alive(false);
    let conn = builder.serve_connection(TokioIo::new(io), service);
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
