//! keylet's push client against a stand-in verifier that answers badly:
//! wrong media type, missing fields, a huge body, 429 with Retry-After, a
//! certificate from another CA or for another name. Every case ends in an
//! error that says what was wrong; none panics. (The real verifier is
//! tested in tests/e2e/push.sh; this one exists to misbehave.)
#![cfg(feature = "push")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "pki_support/mod.rs"]
mod pki_support;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use keylet::config::{AttestationMode, PushSettings, VerifierUrl};
use keylet::push::PushError;
use keylet::push::client::Verifier;
use keylet::push::messages;
use keylet_core::pcr::HashAlg;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

/// One canned answer.
#[derive(Clone)]
struct Canned {
    status: u16,
    content_type: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
}

/// A TLS server on 127.0.0.1 that answers every request with `answer`,
/// using a certificate for `names` from a fresh CA; returns the port and
/// the CA's PEM.
async fn stand_in(names: &[&str], answer: Canned) -> (u16, String) {
    let ca = pki_support::ca("stand-in verifier CA");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert =
        rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_string()).collect::<Vec<_>>())
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
    let certs = vec![CertificateDer::from_pem_slice(cert.pem().as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, answer) = (acceptor.clone(), answer.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(move |_req| {
                    let a = answer.clone();
                    async move {
                        let mut r = hyper::Response::builder()
                            .status(a.status)
                            .header("Content-Type", a.content_type);
                        for (k, v) in a.headers {
                            r = r.header(k, v);
                        }
                        Ok::<_, Infallible>(r.body(Full::new(Bytes::from(a.body))).unwrap())
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (port, ca.pem())
}

fn verifier(host: &str, port: u16, ca_pem: &str, dir: &tempfile::TempDir) -> Verifier {
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let settings = PushSettings {
        mode: AttestationMode::Push,
        verifier_url: VerifierUrl {
            host: host.into(),
            port,
            prefix: String::new(),
        },
        verifier_tls_ca_cert: ca,
        attestation_interval: Duration::from_secs(60),
        uefi_logs_evidence_version: "2.1".into(),
        server_identifier: "ak".into(),
    };
    Verifier::new(&settings, "agent-1").unwrap()
}

fn json(status: u16, body: &str) -> Canned {
    Canned {
        status,
        content_type: "application/vnd.api+json",
        headers: Vec::new(),
        body: body.as_bytes().to_vec(),
    }
}

async fn post(v: &Verifier) -> Result<messages::SessionChallenge, String> {
    let answer = v
        .call(
            "authentication (POST /sessions)",
            "POST",
            &v.path("sessions"),
            Some(messages::session_request("agent-1")),
            None,
        )
        .await
        .map_err(|e| e.to_string())?;
    messages::parse_session_challenge(&answer.body).map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_well_formed_answer_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let body = r#"{"data":{"type":"session","id":"abc-1","attributes":{"authentication_requested":
        [{"authentication_type":"tpm_pop","chosen_parameters":{"challenge":"AAECAw=="}}]}}}"#;
    let (port, ca) = stand_in(&["127.0.0.1"], json(200, body)).await;
    let c = post(&verifier("127.0.0.1", port, &ca, &dir)).await.unwrap();
    assert_eq!(
        (c.id.as_str(), c.challenge.as_slice()),
        ("abc-1", &[0u8, 1, 2, 3][..])
    );
}

#[tokio::test]
async fn wrong_media_type_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut canned = json(200, "<html>hello</html>");
    canned.content_type = "text/html";
    let (port, ca) = stand_in(&["127.0.0.1"], canned).await;
    let e = post(&verifier("127.0.0.1", port, &ca, &dir))
        .await
        .unwrap_err();
    assert!(e.contains("Content-Type") && e.contains("text/html"), "{e}");
}

#[tokio::test]
async fn missing_fields_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let (port, ca) = stand_in(&["127.0.0.1"], json(200, r#"{"data":{"type":"session"}}"#)).await;
    let e = post(&verifier("127.0.0.1", port, &ca, &dir))
        .await
        .unwrap_err();
    assert!(e.contains("/data/id"), "{e}");
    let requested = r#"{"data":{"attributes":{"evidence_requested":[{"evidence_class":"certification","evidence_type":"tpm_quote"}]}}}"#;
    let e = messages::parse_requested(requested.as_bytes(), HashAlg::Sha256, "rsassa").unwrap_err();
    assert!(e.to_string().contains("chosen_parameters"), "{e}");
}

#[tokio::test]
async fn a_huge_body_is_refused_not_buffered() {
    let dir = tempfile::tempdir().unwrap();
    let huge = format!(r#"{{"pad":"{}"}}"#, "x".repeat(4 << 20));
    let (port, ca) = stand_in(&["127.0.0.1"], json(200, &huge)).await;
    let e = post(&verifier("127.0.0.1", port, &ca, &dir))
        .await
        .unwrap_err();
    assert!(e.contains("at most"), "{e}");
}

#[tokio::test]
async fn too_many_requests_carries_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut canned = json(
        429,
        r#"{"errors":[{"status":"429","detail":"Wait 3 seconds"}]}"#,
    );
    canned.headers.push(("Retry-After", "3"));
    let (port, ca) = stand_in(&["127.0.0.1"], canned).await;
    let v = verifier("127.0.0.1", port, &ca, &dir);
    let e = v
        .call(
            "capabilities",
            "POST",
            &v.attestations_path(),
            None,
            Some("token"),
        )
        .await
        .unwrap_err();
    match e {
        PushError::Status {
            status: 429,
            retry_after,
            detail,
            ..
        } => {
            assert_eq!(retry_after.as_deref(), Some("3"));
            assert_eq!(detail, "Wait 3 seconds");
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn certificates_from_another_ca_or_for_another_name_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (port, _) = stand_in(&["127.0.0.1"], json(200, "{}")).await;
    let other_ca = pki_support::ca("not the verifier's CA").pem();
    let e = post(&verifier("127.0.0.1", port, &other_ca, &dir))
        .await
        .unwrap_err();
    assert!(
        e.contains("TLS") && e.contains("verifier_tls_ca_cert"),
        "{e}"
    );
    let (port, ca) = stand_in(&["verifier.example"], json(200, "{}")).await;
    let e = post(&verifier("127.0.0.1", port, &ca, &dir))
        .await
        .unwrap_err();
    assert!(e.contains("TLS") && e.contains("verifier_url"), "{e}");
}
