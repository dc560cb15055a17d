//! The identity listener for SPIRE: the requests the stock SPIRE Keylime
//! plugin makes, over plain HTTP on loopback TCP and on the Unix socket; every
//! other endpoint is a 404; socket peers are admitted by SO_PEERCRED.
//! (The quote itself is checked against the real registrar's AK by
//! tests/e2e/tls.sh.)
#![cfg(feature = "identity")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod server_support;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use keylet::config::IdentitySettings;
use keylet::server::{Attestation, IdentityListeners, ServerSettings, serve_identity};
use server_support::{FakeTpm, http, temp_dir};
use tokio::sync::oneshot;

const NONCE: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"; // what the plugin's server sends

struct Running {
    tcp: std::net::SocketAddr,
    socket: std::path::PathBuf,
    tpm: Arc<FakeTpm>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(allow_uids: Vec<u32>, allow_gids: Vec<u32>) -> Running {
    let socket = temp_dir("identity").join("identity.sock");
    let settings = IdentitySettings {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        socket: Some(socket.clone()),
        allow_uids,
        allow_gids,
    };
    let listeners = IdentityListeners::bind(&settings).await.unwrap();
    let tcp = listeners.tcp_addr().unwrap();
    let tpm = Arc::new(FakeTpm::default());
    let service = Arc::clone(&tpm) as Arc<dyn Attestation>;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_identity(
        listeners,
        ServerSettings::default(),
        service,
        Box::pin(async {
            let _ = stopped.await;
        }),
    ));
    Running {
        tcp,
        socket,
        tpm,
        stop,
        task,
    }
}

/// `curl` over the Unix socket, optionally as another user: (status, body).
async fn curl_unix(socket: &Path, path: &str, as_user: Option<(u32, u32)>) -> (u16, String) {
    let (socket, path) = (socket.to_path_buf(), path.to_string());
    tokio::task::spawn_blocking(move || curl_blocking(&socket, &path, as_user))
        .await
        .unwrap()
}

fn curl_blocking(socket: &Path, path: &str, as_user: Option<(u32, u32)>) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "--max-time",
        "10",
        "-w",
        "\n%{http_code}",
        "--unix-socket",
    ])
    .arg(socket)
    .arg(format!("http://localhost{path}"));
    if let Some((uid, gid)) = as_user {
        cmd.uid(uid).gid(gid);
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (
        code.trim().parse().unwrap_or(0),
        format!("{body}{}", String::from_utf8_lossy(&out.stderr)),
    )
}

#[tokio::test]
async fn serves_exactly_what_the_spire_plugin_asks_for_over_tcp() {
    let r = start(vec![], vec![]).await;
    for v in ["2.2", "2.5", "2.6"] {
        // 1. agent/info: the plugin reads agent_uuid and tpm_hash_alg.
        let info = http(r.tcp, "GET", &format!("/v{v}/agent/info")).await;
        assert_eq!(info.status, 200, "{}", info.text());
        let j = info.json();
        assert_eq!(j["code"], 200);
        assert_eq!(
            j["results"]["agent_uuid"],
            "d432fbb3-d2f1-4a97-9ef7-75bd81c00000"
        );
        assert_eq!(j["results"]["tpm_hash_alg"], "sha256");
        // 2. quotes/identity with the nonce from the SPIRE server.
        let q = http(
            r.tcp,
            "GET",
            &format!("/v{v}/quotes/identity?nonce={NONCE}"),
        )
        .await;
        assert_eq!(q.status, 200, "{}", q.text());
        let quote = q.json()["results"]["quote"].as_str().unwrap().to_string();
        assert!(quote.starts_with(&format!("r{NONCE}:")), "{quote}");
    }
    // The quote went to the one Attestation service, PCR 16 only.
    let calls = r.tpm.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 3);
    assert!(calls.iter().all(|(n, mask)| n == NONCE && *mask == 1 << 16));
    assert_eq!(http(r.tcp, "GET", "/version").await.status, 200);

    // Everything else is not there.
    for (method, path) in [
        ("GET", "/v2.2/quotes/integrity?nonce=abc&mask=0x1"),
        ("GET", "/v2.2/keys/pubkey"),
        ("GET", "/v2.2/keys/verify?challenge=abc"),
        ("POST", "/v2.2/keys/ukey"),
        ("POST", "/v2.2/notifications/revocation"),
        ("GET", "/v2.1/agent/info"),
        ("GET", "/v9.9/agent/info"),
        ("POST", "/version"),
        ("GET", "/"),
    ] {
        let resp = http(r.tcp, method, path).await;
        assert_eq!(resp.status, 404, "{method} {path}: {}", resp.text());
    }
    assert_eq!(r.tpm.calls.lock().unwrap().len(), 3);
    // A bad nonce is still a 400, as on the main port.
    assert_eq!(
        http(r.tcp, "GET", "/v2.2/quotes/identity?nonce=a-b")
            .await
            .status,
        400
    );
    drop(r.stop);
    r.task.await.unwrap();
}

#[tokio::test]
async fn unix_socket_admits_keylets_own_user() {
    let r = start(vec![], vec![65534]).await;
    let meta = std::fs::metadata(&r.socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);

    let (code, body) = curl_unix(&r.socket, "/v2.2/agent/info", None).await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = curl_unix(
        &r.socket,
        &format!("/v2.2/quotes/identity?nonce={NONCE}"),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let (code, _) = curl_unix(&r.socket, "/v2.2/keys/pubkey", None).await;
    assert_eq!(code, 404);
    assert_eq!(r.tpm.calls.lock().unwrap().len(), 1);
    drop(r.stop);
    r.task.await.unwrap();
    assert!(!r.socket.exists(), "the socket file is removed at shutdown");
}

/// Runs clients as other uids: root only (scripts/test-all.sh step `test-root`).
#[tokio::test]
#[ignore = "needs root: runs curl as other uids; scripts/test-all.sh runs it as root"]
async fn unix_socket_admits_allowed_peers_only() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (it runs curl as other uids)"
    );
    let r = start(vec![], vec![65534]).await;
    let meta = std::fs::metadata(&r.socket).unwrap();
    {
        use std::os::unix::fs::MetadataExt;
        // The socket belongs to the first allowed group.
        assert_eq!(meta.gid(), 65534);
        // A peer whose gid is allowed.
        let (code, body) = curl_unix(&r.socket, "/v2.2/agent/info", Some((65534, 65534))).await;
        assert_eq!(code, 200, "{body}");
        // A peer on neither list (the socket made connectable for everyone so
        // that SO_PEERCRED, not the file mode, is what refuses it).
        std::fs::set_permissions(&r.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
        let (code, body) = curl_unix(
            &r.socket,
            &format!("/v2.2/quotes/identity?nonce={NONCE}"),
            Some((65533, 65533)),
        )
        .await;
        assert_eq!(code, 403, "{body}");
        assert!(body.contains("uid 65533"), "{body}");
    }
    // The refused identity quote never reached the TPM.
    assert_eq!(r.tpm.calls.lock().unwrap().len(), 0);
    drop(r.stop);
    r.task.await.unwrap();
}

#[tokio::test]
async fn a_stale_socket_is_replaced_and_a_regular_file_is_not() {
    let dir = temp_dir("identity-stale");
    let path = dir.join("identity.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let settings = IdentitySettings {
        socket: Some(path.clone()),
        ..IdentitySettings::default()
    };
    drop(IdentityListeners::bind(&settings).await.unwrap());
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, "not a socket").unwrap();
    let e = IdentityListeners::bind(&settings)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("identity_socket") && e.contains("not a socket"),
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a socket");
}
