//! The metrics listener: `GET /metrics` over plain HTTP/1.1, a few
//! connections at a time, stopped when its [`MetricsServer`] is dropped.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::Metrics;
use crate::net::stream::boxed;

/// Scrapes served at once; more wait in the accept queue.
const MAX_CONNECTIONS: usize = 4;
/// How long a scraper may take to send its request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// The OpenMetrics text format, which Prometheus asks for and understands.
const CONTENT_TYPE_OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Why the metrics listener could not start: the `metrics_listen` address
/// cannot be bound, for the operating system's reason.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot listen for metrics on {addr} (option metrics_listen): {source}; pick a free \
     port or leave metrics_listen empty to turn metrics off"
)]
pub struct MetricsError {
    addr: SocketAddr,
    source: std::io::Error,
}

/// The running metrics listener; dropping it stops it.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl MetricsServer {
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `addr` and serves `metrics` on a spawned task.
///
/// # Errors
///
/// [`MetricsError`] if the address cannot be bound.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> Result<MetricsServer, MetricsError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| MetricsError { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    log::info!("serving metrics on http://{bound}/metrics");
    let task = tokio::spawn(accept_loop(listener, metrics));
    Ok(MetricsServer { addr: bound, task })
}

async fn accept_loop(listener: TcpListener, metrics: Arc<Metrics>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                log::warn!("metrics: accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                std::future::ready(Ok::<_, Infallible>(answer(&request, &metrics)))
            });
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(boxed(stream)), service)
                .await;
            if let Err(e) = served {
                log::debug!("metrics connection from {peer} ended with an error: {e}");
            }
            drop(permit);
        });
    }
}

fn answer<B>(request: &Request<B>, metrics: &Metrics) -> Response<Full<Bytes>> {
    const TEXT: &str = "text/plain; charset=utf-8";
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => (StatusCode::OK, CONTENT_TYPE_OPENMETRICS, metrics.render()),
        (_, "/metrics") => (
            StatusCode::METHOD_NOT_ALLOWED,
            TEXT,
            "only GET is allowed\n".into(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            TEXT,
            "keylet serves only /metrics here\n".into(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(ALLOW, HeaderValue::from_static("GET"));
    }
    response
}
