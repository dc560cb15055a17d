//! The agent API over mTLS: who gets in, which TLS versions work, and how bad
//! certificate files are reported.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod server_support;

use keylet::server::ServerTls;
use keylet::server::tls::server_config;
use rustls::version::{TLS12, TLS13};
use server_support::{Pki, client_config, request_on, start, tls_connect, write_temp};
use tokio::io::AsyncReadExt;

/// Whether a TLS connection is usable for a request: with TLS 1.3 the server
/// rejects a client certificate after the client thinks the handshake is
/// done, so the failure shows on the first read.
async fn version_over_tls(
    addr: std::net::SocketAddr,
    config: std::sync::Arc<rustls::ClientConfig>,
) -> Result<server_support::Reply, String> {
    let mut stream = tls_connect(addr, config).await.map_err(|e| e.to_string())?;
    use tokio::io::AsyncWriteExt;
    stream
        .write_all(b"GET /version HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .await
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8(raw).map_err(|e| e.to_string())?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP response")?;
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    Ok(server_support::Reply {
        status: hyper::StatusCode::from_u16(status).unwrap(),
        headers: hyper::HeaderMap::new(),
        body: body.as_bytes().to_vec(),
    })
}

#[tokio::test]
async fn trusted_client_gets_in_with_tls12_and_tls13() {
    let pki = Pki::new();
    let s = start(Some(ServerTls::from_files(&pki.files).unwrap()), |_| {}).await;
    for version in [&TLS12, &TLS13] {
        let config = client_config(
            &pki.ca_pem,
            Some((&pki.client_cert_pem, &pki.client_key_pem)),
            &[version],
        );
        let stream = tls_connect(s.addr, config).await.unwrap();
        let (_, conn) = stream.get_ref();
        assert_eq!(conn.protocol_version(), Some(version.version));
        assert_eq!(conn.alpn_protocol(), Some(&b"http/1.1"[..]));
        let r = request_on(stream, "GET", "/version").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["results"]["supported_version"], "2.6");
    }
    s.shutdown().await;
}

#[tokio::test]
async fn clients_without_a_trusted_certificate_are_refused() {
    let pki = Pki::new();
    let s = start(Some(ServerTls::from_files(&pki.files).unwrap()), |_| {}).await;
    let (foreign_cert, foreign_key) = Pki::foreign_client();
    for version in [&TLS12, &TLS13] {
        let anonymous = client_config(&pki.ca_pem, None, &[version]);
        let r = version_over_tls(s.addr, anonymous).await;
        assert!(r.is_err(), "no client certificate ({version:?}): {r:?}");

        let foreign = client_config(&pki.ca_pem, Some((&foreign_cert, &foreign_key)), &[version]);
        let r = version_over_tls(s.addr, foreign).await;
        assert!(
            r.is_err(),
            "certificate from another CA ({version:?}): {r:?}"
        );

        // The same path with a good certificate works, so the failures above
        // are about the certificate.
        let good = client_config(
            &pki.ca_pem,
            Some((&pki.client_cert_pem, &pki.client_key_pem)),
            &[version],
        );
        let r = version_over_tls(s.addr, good).await.unwrap();
        assert_eq!(r.status, 200);
    }
    s.shutdown().await;
}

#[tokio::test]
async fn no_session_tickets_are_sent() {
    let pki = Pki::new();
    let s = start(Some(ServerTls::from_files(&pki.files).unwrap()), |_| {}).await;
    let config = client_config(
        &pki.ca_pem,
        Some((&pki.client_cert_pem, &pki.client_key_pem)),
        &[&TLS13],
    );
    // Two requests on fresh connections sharing the client's session cache:
    // without tickets the second handshake cannot resume.
    for _ in 0..2 {
        let r = version_over_tls(s.addr, std::sync::Arc::clone(&config))
            .await
            .unwrap();
        assert_eq!(r.status, 200);
    }
    let stream = tls_connect(s.addr, config).await.unwrap();
    assert_eq!(
        stream.get_ref().1.handshake_kind(),
        Some(rustls::HandshakeKind::Full)
    );
    s.shutdown().await;
}

#[tokio::test]
async fn replaced_configuration_applies_to_new_connections() {
    let old = Pki::new();
    let tls = ServerTls::from_files(&old.files).unwrap();
    let s = start(Some(tls.clone()), |_| {}).await;
    let new = Pki::new();
    tls.replace(server_config(&new.files).unwrap());
    let new_client = client_config(
        &new.ca_pem,
        Some((&new.client_cert_pem, &new.client_key_pem)),
        &[&TLS13],
    );
    assert_eq!(
        version_over_tls(s.addr, new_client).await.unwrap().status,
        200
    );
    let old_client = client_config(
        &old.ca_pem,
        Some((&old.client_cert_pem, &old.client_key_pem)),
        &[&TLS13],
    );
    assert!(version_over_tls(s.addr, old_client).await.is_err());
    s.shutdown().await;
}

#[test]
fn bad_certificate_files_are_named_in_the_error() {
    let pki = Pki::new();
    let missing = pki.dir.join("does-not-exist.pem");
    let empty = write_temp("tls", "empty.pem", b"");
    let garbage = write_temp(
        "tls",
        "garbage.pem",
        b"-----BEGIN CERTIFICATE-----\nnot base64!\n",
    );
    let encrypted = write_temp(
        "tls",
        "encrypted.pem",
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
    );

    let mut f = pki.files.clone();
    f.server_cert = missing.clone();
    let e = server_config(&f).unwrap_err();
    let read = format!(
        "cannot read the server certificate (server_cert) file {}",
        missing.display()
    );
    assert!(e.to_string().starts_with(&read), "{e}");

    let mut f = pki.files.clone();
    f.server_key = empty.clone();
    let e = server_config(&f).unwrap_err();
    let no_key = format!(
        "the server key (server_key) file {} holds no usable PEM private key",
        empty.display()
    );
    assert_eq!(e.to_string(), no_key);

    let mut f = pki.files.clone();
    f.server_key = pki.files.server_cert.clone();
    let e = server_config(&f).unwrap_err();
    assert!(
        e.to_string().ends_with("holds no usable PEM private key"),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("the server key (server_key) file"),
        "{e}"
    );

    let mut f = pki.files.clone();
    f.server_key = encrypted.clone();
    let e = server_config(&f).unwrap_err();
    let is_encrypted = format!("the server key {} is encrypted;", encrypted.display());
    assert!(e.to_string().starts_with(&is_encrypted), "{e}");

    let mut f = pki.files.clone();
    f.trusted_client_ca = vec![pki.files.trusted_client_ca[0].clone(), garbage.clone()];
    let e = server_config(&f).unwrap_err();
    let not_pem = format!(
        "the trusted client CA (trusted_client_ca) file {} is not valid PEM:",
        garbage.display()
    );
    assert!(e.to_string().starts_with(&not_pem), "{e}");

    let mut f = pki.files.clone();
    f.trusted_client_ca = vec![empty.clone()];
    let e = server_config(&f).unwrap_err();
    let no_ca = format!(
        "the trusted client CA (trusted_client_ca) file {} holds no usable PEM certificate",
        empty.display()
    );
    assert_eq!(e.to_string(), no_ca);

    let mut f = pki.files.clone();
    f.trusted_client_ca.clear();
    let e = server_config(&f).unwrap_err().to_string();
    assert!(
        e.starts_with("mTLS is enabled but trusted_client_ca lists no CA file"),
        "{e}"
    );

    // A key that does not belong to the certificate.
    let other = Pki::new();
    let mut f = pki.files.clone();
    f.server_key = other.files.server_key.clone();
    let e = server_config(&f).unwrap_err();
    assert!(e.to_string().contains("cannot be used together"), "{e}");
}

#[tokio::test]
async fn every_ca_of_a_multi_certificate_file_is_trusted() {
    let a = Pki::new();
    let b = Pki::new();
    let both = write_temp(
        "tls",
        "both.pem",
        format!("{}{}", a.ca_pem, b.ca_pem).as_bytes(),
    );
    let mut files = a.files.clone();
    files.trusted_client_ca = vec![both];
    let s = start(Some(ServerTls::from_files(&files).unwrap()), |_| {}).await;
    for client in [&a, &b] {
        // The server certificate is from a's CA; the client certificate from its own.
        let config = client_config(
            &a.ca_pem,
            Some((&client.client_cert_pem, &client.client_key_pem)),
            &[&TLS13],
        );
        assert_eq!(version_over_tls(s.addr, config).await.unwrap().status, 200);
    }
    s.shutdown().await;
}
