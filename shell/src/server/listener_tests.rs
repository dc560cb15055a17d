//! The accept loop over real sockets: refusals answered over HTTP, idle
//! clients making room, the first-byte deadline.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use keylet_core::alg::{KeyAlg, SignAlg};
use keylet_core::pcr::{HashAlg, PcrMask};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UnixStream};
use tokio::sync::oneshot;

use super::*;
use crate::server::query::Nonce;
use crate::server::service::{AgentInfo, AttestError, Attestation, TpmAnswer};
use crate::server::{Limits, ServerSettings};

struct NoTpm;

impl Attestation for NoTpm {
    fn quote(&self, _: &Nonce, _: PcrMask) -> TpmAnswer<'_, String> {
        Box::pin(std::future::ready(Err(AttestError::PcrsUnstable {
            attempts: 1,
        })))
    }
    fn payload_public_pem(&self) -> &str {
        ""
    }
    fn agent_info(&self) -> AgentInfo {
        AgentInfo {
            uuid: "d432fbb3-d2f1-4a97-9ef7-75bd81c00000".into(),
            hash_alg: HashAlg::Sha256,
            key_alg: KeyAlg::Rsa2048,
            sign_alg: SignAlg::Rsassa,
            ak_handle: 0x8100_0001,
        }
    }
    fn certify_ak(&self, _: &[u8]) -> TpmAnswer<'_, (Vec<u8>, Vec<u8>)> {
        Box::pin(std::future::ready(Err(AttestError::Interrupted)))
    }
    fn quote_unbound(&self, _: &[u8], _: PcrMask) -> TpmAnswer<'_, String> {
        Box::pin(std::future::ready(Err(AttestError::Interrupted)))
    }
    fn ak_public(&self) -> &[u8] {
        &[]
    }
    fn ak_name(&self) -> &[u8] {
        &[]
    }
}

/// Runs `accept_loop` on `listener` in the background; dropping the returned
/// sender stops it.
fn serve<L: Accept>(listener: L, limits: Limits) -> oneshot::Sender<()> {
    let (tx, rx) = oneshot::channel::<()>();
    let settings = ServerSettings {
        limits,
        ..ServerSettings::default()
    };
    let handler = Handler {
        service: Arc::new(NoTpm),
        settings,
        identity_only: false,
    };
    tokio::spawn(accept_loop(listener, Arc::new(handler), async move {
        let _ = rx.await;
    }));
    tx
}

async fn get_version<S: AsyncReadExt + AsyncWriteExt + Unpin>(mut s: S) -> String {
    s.write_all(b"GET /version HTTP/1.1\r\nhost: keylet\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    answer
}

async fn connect_from(source: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    socket.connect(to).await.unwrap()
}

/// Whether keylet closes `s` within `within` (without sending anything).
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    matches!(
        tokio::time::timeout(within, s.read(&mut [0u8; 16])).await,
        Ok(Ok(0) | Err(_))
    )
}

/// One connection whose peer is refused, then none.
struct RefusedOnce(Mutex<Option<UnixStream>>);

impl Accept for RefusedOnce {
    type Io = UnixStream;

    async fn next_connection(&self) -> io::Result<Accepted<UnixStream>> {
        let next = self.0.lock().unwrap().take();
        match next {
            Some(io) => Ok(Accepted {
                io,
                source: Source::Uid(4242),
                peer: "uid 4242".into(),
                refusal: Some("Forbidden: uid 4242 is not allowed".into()),
            }),
            None => std::future::pending().await,
        }
    }

    fn first_byte(io: &UnixStream) -> impl Future<Output = io::Result<()>> + Send {
        io.readable()
    }
}

#[tokio::test]
async fn a_refused_peer_gets_a_403_envelope_over_http() {
    let (server, client) = UnixStream::pair().unwrap();
    let _stop = serve(RefusedOnce(Mutex::new(Some(server))), Limits::default());
    let answer = get_version(client).await;
    assert!(answer.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(
        answer.ends_with(
            r#"{"code":403,"status":"Forbidden: uid 4242 is not allowed","results":{}}"#
        ),
        "{answer}"
    );
}

#[tokio::test]
async fn idle_clients_make_room_for_a_request_and_the_busiest_source_goes_first() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = Limits {
        max_pending: Some(8),
        max_connections: 1,
        first_byte_timeout: Duration::from_secs(60),
        ..Limits::default()
    };
    let _stop = serve(listener, limits);
    let mut quiet = connect_from([127, 0, 0, 3], addr).await;
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(connect_from([127, 0, 0, 2], addr).await);
    }
    let t0 = Instant::now();
    let answer = get_version(connect_from([127, 0, 0, 1], addr).await).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    // 8 may wait: the oldest idle ones of 127.0.0.2 were dropped, the
    // newest are still open, and so is the lone client of 127.0.0.3.
    assert!(closed_within(&mut idle[0], Duration::from_secs(1)).await);
    assert!(closed_within(&mut idle[12], Duration::from_secs(1)).await);
    assert!(!closed_within(&mut idle[19], Duration::from_millis(200)).await);
    assert!(!closed_within(&mut quiet, Duration::from_millis(200)).await);
}

#[tokio::test]
async fn a_client_that_sends_nothing_is_dropped_at_the_first_byte_deadline() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = Limits {
        first_byte_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let _stop = serve(listener, limits);
    let mut idle = connect_from([127, 0, 0, 1], addr).await;
    let t0 = Instant::now();
    assert!(closed_within(&mut idle, Duration::from_secs(2)).await);
    assert!(
        t0.elapsed() >= Duration::from_millis(150),
        "{:?}",
        t0.elapsed()
    );
}
