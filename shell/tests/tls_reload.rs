//! Certificates without downtime, over real TLS with real files: 24-hour EC
//! P-256 client certificates replaced under load, a CA rollover (bundle with
//! old and new, then only new), a broken CA file (the old configuration
//! stays, a log line names the file) and keylet's own certificate, which only
//! a reload request (SIGHUP in production) changes. Each test fires its own
//! server's reload trigger: no process-wide signal reaches another test's
//! reloader.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod server_support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use keylet::server::ServerTls;
use keylet::server::TlsFiles;
use keylet::server::reload::TlsReloader;
use rcgen::{CertifiedIssuer, KeyPair};
use rustls::version::{TLS12, TLS13};
use server_support::pki::{ca, leaf_params};
use server_support::{client_config, request_on, start, temp_dir, tls_connect};
use tokio::sync::mpsc;

// ---------------------------------------------------------------- log capture
struct Capture(Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{} {}", record.level(), record.args()));
    }
    fn flush(&self) {}
}

fn capture() -> &'static Capture {
    static LOG: OnceLock<&'static Capture> = OnceLock::new();
    LOG.get_or_init(|| {
        let c: &'static Capture = Box::leak(Box::new(Capture(Mutex::new(Vec::new()))));
        log::set_logger(c).unwrap();
        log::set_max_level(log::LevelFilter::Info);
        c
    })
}

async fn wait_log(what: &str, needles: &[&str]) -> String {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(10) {
        if let Some(line) = capture()
            .0
            .lock()
            .unwrap()
            .iter()
            .find(|l| needles.iter().all(|n| l.contains(n)))
        {
            return line.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: no log line with {needles:?}");
}

// ---------------------------------------------------------------- PKI
/// A 24-hour EC P-256 leaf certificate: (cert PEM, key PEM).
fn leaf_24h(issuer: &CertifiedIssuer<'static, KeyPair>, name: &str) -> (String, String) {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = leaf_params(name);
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(1);
    params.not_after = now + time::Duration::hours(24);
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// Replaces `path` the way tools that write safely do: a new file renamed over it.
fn replace_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

// ---------------------------------------------------------------- load
type Slot = Arc<RwLock<Arc<rustls::ClientConfig>>>;

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    errors: Mutex<Vec<String>>,
}

/// Keeps making fresh mTLS connections with whatever client material `slot`
/// holds, one `GET /version` each, until `stop`.
fn load(
    addr: std::net::SocketAddr,
    slot: Slot,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(Ordering::SeqCst) {
            let config = Arc::clone(&slot.read().unwrap());
            match version(addr, config).await {
                Ok(()) => tally.ok.fetch_add(1, Ordering::SeqCst),
                Err(e) => {
                    tally.errors.lock().unwrap().push(e);
                    tally.failed.fetch_add(1, Ordering::SeqCst)
                }
            };
        }
    })
}

/// One request on a new connection; with TLS 1.3 a refused client
/// certificate shows on the first read, so the whole exchange counts.
async fn version(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tls_connect(addr, config).await.map_err(|e| e.to_string())?;
    s.write_all(b"GET /version HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.map_err(|e| e.to_string())?;
    if raw.starts_with(b"HTTP/1.1 200") {
        Ok(())
    } else {
        Err(format!("answer: {}", String::from_utf8_lossy(&raw)))
    }
}

async fn wait_until(what: &str, mut ok: impl AsyncFnMut() -> bool) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(10) {
        if ok().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} within 10 s");
}

/// Waits until `tally` counts `n` answered requests (failures fail at the end).
async fn served_at_least(what: &str, tally: &Tally, n: u64) {
    let what = format!("{what}: {n} requests answered");
    wait_until(&what, async || tally.ok.load(Ordering::SeqCst) >= n).await;
}

struct Setup {
    dir: PathBuf,
    files: TlsFiles,
    server_ca: CertifiedIssuer<'static, KeyPair>,
}

fn setup(trusted_pem: &str) -> Setup {
    let dir = temp_dir("reload");
    let server_ca = ca("keylet server CA");
    let (cert, key) = leaf_24h(&server_ca, "agent");
    let files = TlsFiles {
        server_cert: dir.join("server-cert.crt"),
        server_key: dir.join("server-private.pem"),
        trusted_client_ca: vec![dir.join("cacert.crt")],
    };
    std::fs::write(&files.server_cert, cert).unwrap();
    std::fs::write(&files.server_key, key).unwrap();
    std::fs::write(&files.trusted_client_ca[0], trusted_pem).unwrap();
    Setup {
        dir,
        files,
        server_ca,
    }
}

fn client(s: &Setup, (cert, key): &(String, String)) -> Arc<rustls::ClientConfig> {
    client_config(&s.server_ca.pem(), Some((cert, key)), &[&TLS13, &TLS12])
}

#[tokio::test]
async fn ca_rollover_and_24h_client_certs_under_load() {
    capture();
    let (ca_old, ca_new) = (ca("client CA 2025"), ca("client CA 2026"));
    let s = setup(&ca_old.pem());
    let ca_file = s.files.trusted_client_ca[0].clone();
    let tls = ServerTls::from_files(&s.files).unwrap();
    let server = start(Some(tls.clone()), |_| {}).await;
    let reloader = tokio::spawn(
        TlsReloader::new(tls).run_with(Duration::from_millis(100), None::<mpsc::Receiver<()>>),
    );

    // Clients of the old CA under load; their 24-hour certificate is replaced
    // by a fresh one while they run.
    let old_slot: Slot = Arc::new(RwLock::new(client(&s, &leaf_24h(&ca_old, "verifier"))));
    let (stop_old, tally_old) = (Arc::new(AtomicBool::new(false)), Arc::new(Tally::default()));
    let old_load: Vec<_> = (0..3)
        .map(|_| {
            load(
                server.addr,
                Arc::clone(&old_slot),
                Arc::clone(&stop_old),
                Arc::clone(&tally_old),
            )
        })
        .collect();
    served_at_least("old-CA clients", &tally_old, 5).await;
    *old_slot.write().unwrap() = client(&s, &leaf_24h(&ca_old, "verifier"));

    // Rollover, step 1: the bundle holds the old and the new CA.
    let new_client = client(&s, &leaf_24h(&ca_new, "verifier"));
    assert!(version(server.addr, Arc::clone(&new_client)).await.is_err());
    replace_atomically(&ca_file, &format!("{}{}", ca_old.pem(), ca_new.pem()));
    wait_until("a client of the new CA gets in", async || {
        version(server.addr, Arc::clone(&new_client)).await.is_ok()
    })
    .await;
    let new_slot: Slot = Arc::new(RwLock::new(Arc::clone(&new_client)));
    let (stop_new, tally_new) = (Arc::new(AtomicBool::new(false)), Arc::new(Tally::default()));
    let new_load: Vec<_> = (0..3)
        .map(|_| {
            load(
                server.addr,
                Arc::clone(&new_slot),
                Arc::clone(&stop_new),
                Arc::clone(&tally_new),
            )
        })
        .collect();
    served_at_least("new-CA clients", &tally_new, 10).await;
    // Each load task may finish one request begun with the previous
    // certificate: more than that many requests ran with the fresh one.
    let before = tally_old.ok.load(Ordering::SeqCst);
    *old_slot.write().unwrap() = client(&s, &leaf_24h(&ca_old, "verifier"));
    served_at_least("old-CA clients, new certificate", &tally_old, before + 10).await;

    // Every request with valid material succeeded through the swaps.
    stop_old.store(true, Ordering::SeqCst);
    for t in old_load {
        t.await.unwrap();
    }
    assert_eq!(
        tally_old.failed.load(Ordering::SeqCst),
        0,
        "old-CA clients failed while trusted: {:?}",
        tally_old.errors.lock().unwrap().first()
    );
    assert!(tally_old.ok.load(Ordering::SeqCst) >= 10);

    // A connection of an old-CA client opened (TLS handshake done) before
    // the rollover; keylet serves one request per connection.
    let open = tls_connect(server.addr, client(&s, &leaf_24h(&ca_old, "tenant")))
        .await
        .unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(open))
            .await
            .unwrap();
    tokio::spawn(conn);
    let get = || {
        hyper::Request::builder()
            .uri("/version")
            .header("host", "localhost")
            .body(http_body_util::Empty::<hyper::body::Bytes>::new())
            .unwrap()
    };

    // Rollover, step 2: only the new CA, written in place (not renamed).
    std::fs::write(&ca_file, ca_new.pem()).unwrap();
    let old_client = client(&s, &leaf_24h(&ca_old, "verifier"));
    wait_until("old-CA clients are refused", async || {
        version(server.addr, Arc::clone(&old_client)).await.is_err()
    })
    .await;
    for _ in 0..5 {
        assert!(version(server.addr, Arc::clone(&old_client)).await.is_err());
    }
    // The connection opened before finishes its request with its own config,
    // and is closed after it (no keep-alive).
    let r = sender.send_request(get()).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers().get("connection").unwrap(), "close");
    assert!(sender.send_request(get()).await.is_err());

    // A broken CA file: logged with its path, the running config stays.
    std::fs::write(&ca_file, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n").unwrap();
    let line = wait_log(
        "broken CA file",
        &["rejected", &ca_file.display().to_string()],
    )
    .await;
    assert!(line.starts_with("ERROR"), "{line}");
    // An empty file and a missing one are reported too.
    std::fs::write(&ca_file, "").unwrap();
    wait_log("empty CA file", &["rejected", "holds no usable PEM"]).await;
    std::fs::remove_file(&ca_file).unwrap();
    wait_log("missing CA file", &["rejected", "cannot read"]).await;
    assert!(version(server.addr, Arc::clone(&new_client)).await.is_ok());
    assert!(version(server.addr, Arc::clone(&old_client)).await.is_err());
    // Fixed again: picked up.
    std::fs::write(&ca_file, format!("{}{}", ca_new.pem(), ca_old.pem())).unwrap();
    wait_until("the fixed bundle is loaded", async || {
        version(server.addr, Arc::clone(&old_client)).await.is_ok()
    })
    .await;

    stop_new.store(true, Ordering::SeqCst);
    for t in new_load {
        t.await.unwrap();
    }
    assert_eq!(
        tally_new.failed.load(Ordering::SeqCst),
        0,
        "new-CA clients failed: {:?}",
        tally_new.errors.lock().unwrap().first()
    );
    assert!(tally_new.ok.load(Ordering::SeqCst) >= 10);
    reloader.abort();
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&s.dir);
}

fn served_cert(stream: &tokio_rustls::client::TlsStream<tokio::net::TcpStream>) -> Vec<u8> {
    let (_, conn) = stream.get_ref();
    conn.peer_certificates().unwrap()[0].as_ref().to_vec()
}

fn der(pem: &str) -> Vec<u8> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .as_ref()
        .to_vec()
}

#[tokio::test]
async fn own_certificate_changes_only_on_reload_request() {
    capture();
    let client_ca = ca("client CA");
    let s = setup(&client_ca.pem());
    let first = der(&std::fs::read_to_string(&s.files.server_cert).unwrap());
    let tls = ServerTls::from_files(&s.files).unwrap();
    let server = start(Some(tls.clone()), |_| {}).await;
    let (reload, requests) = mpsc::channel(1);
    let reloader =
        tokio::spawn(TlsReloader::new(tls).run_with(Duration::from_millis(100), Some(requests)));
    let me = client(&s, &leaf_24h(&client_ca, "verifier"));

    let (cert, key) = leaf_24h(&s.server_ca, "agent-next");
    std::fs::write(&s.files.server_key, &key).unwrap();
    std::fs::write(&s.files.server_cert, &cert).unwrap();
    wait_log(
        "server cert change",
        &["WARN", "keeps serving the certificate the verifier"],
    )
    .await;
    let stream = tls_connect(server.addr, Arc::clone(&me)).await.unwrap();
    assert_eq!(
        served_cert(&stream),
        first,
        "the pinned certificate changed without SIGHUP"
    );
    assert_eq!(request_on(stream, "GET", "/version").await.status, 200);

    reload.send(()).await.unwrap();
    wait_log("SIGHUP reload", &["now serving the new server certificate"]).await;
    let stream = tls_connect(server.addr, Arc::clone(&me)).await.unwrap();
    assert_eq!(served_cert(&stream), der(&cert));
    assert_eq!(request_on(stream, "GET", "/version").await.status, 200);

    // SIGHUP with a key that does not match the certificate: rejected, old stays.
    let (_, other_key) = leaf_24h(&s.server_ca, "x");
    std::fs::write(&s.files.server_key, other_key).unwrap();
    reload.send(()).await.unwrap();
    wait_log(
        "SIGHUP with a mismatched key",
        &["SIGHUP: TLS reload rejected", "cannot be used together"],
    )
    .await;
    let stream = tls_connect(server.addr, me).await.unwrap();
    assert_eq!(served_cert(&stream), der(&cert));
    reloader.abort();
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&s.dir);
}
