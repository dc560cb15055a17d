//! Shared helpers for the server tests: a canned `Attestation`, test PKI made
//! with rcgen, a server started on a loopback port, and HTTP(S) clients.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use keylet::server::{
    AgentInfo, AttestError, Attestation, Nonce, ServerSettings, ServerTls, TlsFiles, TpmAnswer,
    serve_on,
};
use keylet_core::alg::{KeyAlg, SignAlg};
use keylet_core::pcr::{HashAlg, PcrMask};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls_pki_types::pem::PemObject;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

#[path = "../pki_support/mod.rs"]
pub mod pki;

use pki::{ca, leaf};

pub const PUBKEY_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEtest\n-----END PUBLIC KEY-----\n";

/// The fake AK's TPM2B_PUBLIC and Name (not a real key: only passed on).
pub const FAKE_AK_PUBLIC: &[u8] = b"fake AK public";
pub const FAKE_AK_NAME: &[u8] = b"\x00\x0bfake AK name";

/// Answers quotes with a string that records what it was asked for; push
/// mode's quotes as `r<nonce base64>:<mask hex>:blob`, its proofs as
/// `("attest:" + challenge, "signature")`.
#[derive(Debug, Default)]
pub struct FakeTpm {
    pub fail: AtomicBool,
    /// Milliseconds each quote or proof takes.
    pub delay_ms: AtomicU64,
    /// (nonce, mask) of each quote, pull or push (the push nonce in base64).
    pub calls: Mutex<Vec<(String, u32)>>,
    /// The challenge of each proof of possession.
    pub certified: Mutex<Vec<Vec<u8>>>,
    hold: Mutex<Option<Hold>>,
}

/// A quote held inside the fake TPM: it says when it arrived and waits to be
/// let go.
#[derive(Debug)]
struct Hold {
    arrived: tokio::sync::mpsc::UnboundedSender<()>,
    release: std::sync::mpsc::Receiver<()>,
}

impl FakeTpm {
    /// Holds the next quote inside the TPM: the receiver hears when it has
    /// arrived; it answers once the sender sends (or is dropped).
    pub fn hold_next_quote(
        &self,
    ) -> (
        tokio::sync::mpsc::UnboundedReceiver<()>,
        std::sync::mpsc::Sender<()>,
    ) {
        let (arrived, arrivals) = tokio::sync::mpsc::unbounded_channel();
        let (release, released) = std::sync::mpsc::channel();
        *self.hold.lock().unwrap() = Some(Hold {
            arrived,
            release: released,
        });
        (arrivals, release)
    }

    /// The delay, then the simulated failure if one is set.
    fn work(&self) -> Result<(), AttestError> {
        std::thread::sleep(std::time::Duration::from_millis(
            self.delay_ms.load(Ordering::SeqCst),
        ));
        if self.fail.load(Ordering::SeqCst) {
            return Err(AttestError::Tpm("simulated TPM failure".into()));
        }
        Ok(())
    }
}

impl Attestation for FakeTpm {
    fn quote<'a>(&'a self, nonce: &'a Nonce, mask: PcrMask) -> TpmAnswer<'a, String> {
        Box::pin(async move { self.quote_now(nonce, mask) })
    }

    fn payload_public_pem(&self) -> &str {
        PUBKEY_PEM
    }

    fn agent_info(&self) -> AgentInfo {
        AgentInfo {
            uuid: "d432fbb3-d2f1-4a97-9ef7-75bd81c00000".into(),
            hash_alg: HashAlg::Sha256,
            key_alg: KeyAlg::Rsa2048,
            sign_alg: SignAlg::Rsassa,
            ak_handle: 2_147_483_649,
        }
    }

    fn certify_ak<'a>(&'a self, qualifying: &'a [u8]) -> TpmAnswer<'a, (Vec<u8>, Vec<u8>)> {
        Box::pin(async move {
            self.certified.lock().unwrap().push(qualifying.to_vec());
            self.work()?;
            Ok(([b"attest:", qualifying].concat(), b"signature".to_vec()))
        })
    }

    fn quote_unbound<'a>(&'a self, nonce: &'a [u8], mask: PcrMask) -> TpmAnswer<'a, String> {
        Box::pin(async move {
            let nonce = STANDARD.encode(nonce);
            self.calls
                .lock()
                .unwrap()
                .push((nonce.clone(), mask.bits()));
            self.work()?;
            Ok(format!("r{nonce}:{:x}:blob", mask.bits()))
        })
    }

    fn ak_public(&self) -> &[u8] {
        FAKE_AK_PUBLIC
    }

    fn ak_name(&self) -> &[u8] {
        FAKE_AK_NAME
    }
}

impl FakeTpm {
    /// A quote, made when the job runs (on the TPM worker's thread).
    fn quote_now(&self, nonce: &Nonce, mask: PcrMask) -> Result<String, AttestError> {
        self.calls
            .lock()
            .unwrap()
            .push((nonce.as_str().to_owned(), mask.bits()));
        let hold = self.hold.lock().unwrap().take();
        if let Some(hold) = hold {
            let _ = hold.arrived.send(());
            let _ = hold.release.recv();
        }
        self.work()?;
        Ok(format!("r{}:{:x}:blob", nonce.as_str(), mask.bits()))
    }
}

/// A fresh directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "keylet-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A CA, a server certificate and a client certificate it signed, as PEM files.
pub struct Pki {
    pub dir: PathBuf,
    pub ca_pem: String,
    pub files: TlsFiles,
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

impl Pki {
    pub fn new() -> Self {
        let dir = temp_dir("pki");
        let ca = ca("keylet test CA");
        let (server_cert, server_key) = leaf(&ca, "agent");
        let (client_cert_pem, client_key_pem) = leaf(&ca, "verifier");
        let write = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let files = TlsFiles {
            server_cert: write("server-cert.crt", &server_cert),
            server_key: write("server-private.pem", &server_key),
            trusted_client_ca: vec![write("cacert.crt", &ca.pem())],
        };
        Self {
            ca_pem: ca.pem(),
            dir,
            files,
            client_cert_pem,
            client_key_pem,
        }
    }

    /// A client certificate and key from a CA the server does not trust.
    pub fn foreign_client() -> (String, String) {
        leaf(&ca("someone else's CA"), "intruder")
    }
}

/// A running server; dropping the sender (or sending) shuts it down.
pub struct Running {
    pub addr: std::net::SocketAddr,
    pub stop: Option<oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<()>,
    pub tpm: Arc<FakeTpm>,
}

impl Running {
    pub async fn shutdown(mut self) {
        drop(self.stop.take());
        self.task.await.unwrap();
    }
}

/// Starts a server on 127.0.0.1:0 with `configure` applied to its settings.
pub async fn start(tls: Option<ServerTls>, configure: impl FnOnce(&mut ServerSettings)) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut settings = ServerSettings::default();
    settings.tls = tls;
    configure(&mut settings);
    let tpm = Arc::new(FakeTpm::default());
    let (stop, stopped) = oneshot::channel::<()>();
    let service: Arc<dyn Attestation> = Arc::clone(&tpm) as Arc<dyn Attestation>;
    let task = tokio::spawn(async move {
        serve_on(listener, settings, service, async {
            let _ = stopped.await;
        })
        .await;
    });
    Running {
        addr,
        stop: Some(stop),
        task,
        tpm,
    }
}

/// A response: status, headers and body bytes.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

/// Sends one request over an established stream.
pub async fn request_on<S>(io: S, method: &str, path: &str) -> Reply
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

/// One plain-HTTP request.
pub async fn http(addr: std::net::SocketAddr, method: &str, path: &str) -> Reply {
    let tcp = TcpStream::connect(addr).await.unwrap();
    request_on(tcp, method, path).await
}

/// A TLS client trusting `ca_pem`, presenting `client` (cert, key) if given.
pub fn client_config(
    ca_pem: &str,
    client: Option<(&str, &str)>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots);
    let mut config = match client {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(cert.as_bytes())
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Connects with TLS; the error if the handshake (or first read) fails.
pub async fn tls_connect(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// Writes `text` to a fresh file and returns its path.
pub fn write_temp(tag: &str, name: &str, contents: &[u8]) -> PathBuf {
    let p = temp_dir(tag).join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

pub fn read_to_string(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}
