//! keylet's push loop against a real swtpm and a stand-in verifier that
//! answers badly first: a session answer with the wrong media type, one
//! without an id, a bogus `Location`, 429, a negative and an absurd
//! `seconds_to_next_attestation`, an evidence answer that is not JSON. The
//! loop must get past each (no panic, no tight loop) and keep attesting
//! with TPM-made proofs and quotes. (The real verifier is tested in
//! tests/e2e/push.sh; this one exists to misbehave.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::convert::Infallible;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use keylet::agent::{
    TpmAttestation, TpmBox, attestation, attestation_key, endorsement, resolve_identity,
};
use keylet::config::{AgentConfig, AttestationMode, PushSettings, RawConfig, VerifierUrl};
use keylet::metrics::Metrics;
use keylet::push::PushAgent;
use keylet::push::client::Verifier;
use keylet::push::evidence::Sources;
use keylet_core::tpm::transport::BlockOn as _;
use keylet_core::verify;
use keylet_tests::swtpm::SwtpmTcp;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use serde_json::Value;

const CHALLENGE: [u8; 16] = *b"stand-in-verifie";
/// Evidence rounds the loop must get to, past every bad answer.
const ROUNDS: u32 = 5;
/// The bound on reaching them (a few seconds normally; the absurd hint obeyed
/// would be an hour).
const BOUND: Duration = Duration::from_secs(30);

/// What the stand-in saw.
#[derive(Default)]
struct Seen {
    sessions: AtomicU32,
    proofs: AtomicU32,
    capabilities: AtomicU32,
    evidence: AtomicU32,
    evidence_paths: Mutex<Vec<String>>,
    /// Each quote's TPMS_ATTEST extraData was the challenge.
    quotes_ok: AtomicU32,
}

fn answer(
    status: u16,
    ct: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> hyper::Response<Full<Bytes>> {
    let mut r = hyper::Response::builder()
        .status(status)
        .header("Content-Type", ct);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.body(Full::new(body.into())).unwrap()
}

const JSON: &str = "application/vnd.api+json";

fn respond(seen: &Seen, method: &str, path: &str, body: &[u8]) -> hyper::Response<Full<Bytes>> {
    let b64 = STANDARD.encode(CHALLENGE);
    match (method, path) {
        ("POST", "/v3.0/sessions") => match seen.sessions.fetch_add(1, Ordering::SeqCst) {
            0 => answer(200, "text/html", &[], "<html>login</html>"),
            1 => answer(200, JSON, &[], r#"{"data":{"type":"session"}}"#),
            _ => answer(
                200,
                JSON,
                &[],
                format!(
                    r#"{{"data":{{"type":"session","id":"s-1","attributes":{{"authentication_requested":[{{"authentication_type":"tpm_pop","chosen_parameters":{{"challenge":"{b64}"}}}}]}}}}}}"#
                ),
            ),
        },
        ("PATCH", "/v3.0/sessions/s-1") => {
            seen.proofs.fetch_add(1, Ordering::SeqCst);
            let v: Value = serde_json::from_slice(body).unwrap();
            let message = v["data"]["attributes"]["authentication_provided"][0]["data"]["message"]
                .as_str()
                .unwrap();
            let attest = STANDARD.decode(message).unwrap();
            assert_eq!(
                verify::read_certify(&attest).unwrap().extra_data,
                &CHALLENGE
            );
            answer(
                200,
                JSON,
                &[],
                r#"{"data":{"attributes":{"evaluation":"pass","token":"s-1.token"}}}"#,
            )
        }
        ("POST", p) if p.ends_with("/attestations") => {
            let requested = format!(
                r#"{{"data":{{"attributes":{{"evidence_requested":[{{"evidence_class":"certification","evidence_type":"tpm_quote","chosen_parameters":{{"challenge":"{b64}","signature_scheme":"rsassa","hash_algorithm":"sha256","selected_subjects":{{"sha256":[15]}}}}}}]}}}}}}"#
            );
            let latest = format!("{}/0", p);
            match seen.capabilities.fetch_add(1, Ordering::SeqCst) {
                0 => answer(
                    201,
                    JSON,
                    &[(
                        "Location",
                        "https://elsewhere.example/v3.0/agents/x/attestations/0",
                    )],
                    requested,
                ),
                1 => answer(
                    429,
                    JSON,
                    &[("Retry-After", "0")],
                    r#"{"errors":[{"detail":"too early"}]}"#,
                ),
                _ => answer(201, JSON, &[("Location", latest.as_str())], requested),
            }
        }
        ("PATCH", p) if p.contains("/attestations/") => {
            seen.evidence_paths.lock().unwrap().push(p.to_string());
            let v: Value = serde_json::from_slice(body).unwrap();
            let message = v["data"]["attributes"]["evidence_collected"][0]["data"]["message"]
                .as_str()
                .unwrap();
            let attest = STANDARD.decode(message).unwrap();
            if verify::read_attest(&attest).unwrap().extra_data == CHALLENGE {
                seen.quotes_ok.fetch_add(1, Ordering::SeqCst);
            }
            match seen.evidence.fetch_add(1, Ordering::SeqCst) {
                0 => answer(
                    202,
                    JSON,
                    &[],
                    r#"{"meta":{"seconds_to_next_attestation":-5}}"#,
                ),
                1 => answer(
                    202,
                    JSON,
                    &[],
                    r#"{"meta":{"seconds_to_next_attestation":99999999999}}"#,
                ),
                2 => answer(202, JSON, &[], "not json at all"),
                _ => answer(
                    202,
                    JSON,
                    &[],
                    r#"{"meta":{"seconds_to_next_attestation":0}}"#,
                ),
            }
        }
        ("GET", p) if p.starts_with("/v2.6/agents/") => answer(
            200,
            "application/json",
            &[],
            r#"{"code":200,"results":{"attestation_status":"PASS","last_successful_attestation":1796000000}}"#,
        ),
        _ => answer(404, JSON, &[], r#"{"errors":[{"detail":"no such route"}]}"#),
    }
}

/// The stand-in: TLS for 127.0.0.1 from a fresh CA; returns the port and the CA PEM.
async fn stand_in(seen: Arc<Seen>) -> (u16, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(cert.pem().as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, seen) = (acceptor.clone(), Arc::clone(&seen));
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let seen = Arc::clone(&seen);
                    async move {
                        let (method, path) =
                            (req.method().to_string(), req.uri().path().to_string());
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        Ok::<_, Infallible>(respond(&seen, &method, &path, &body))
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

fn service(device: &str, dir: &std::path::Path) -> (Arc<TpmAttestation>, String) {
    let c = AgentConfig::from_raw(&RawConfig::default(), &mut Vec::new()).unwrap();
    let mut tpm = TpmBox::open(device.parse().unwrap()).unwrap();
    let objects = endorsement(&mut tpm, c.tpm_encryption_alg, None).unwrap();
    let identity = resolve_identity(&c.uuid, &objects.ek_public, None).unwrap();
    let (ak, state, _) = attestation_key(
        &mut tpm,
        &objects,
        None,
        &identity,
        c.tpm_encryption_alg,
        c.tpm_hash_alg,
        &dir.join("state.bin"),
    )
    .unwrap();
    if objects.ek_transient {
        tpm.release(objects.ek.handle).block_on();
    }
    let id = state.agent_id.clone();
    (
        Arc::new(attestation(&c, tpm, ak, &state, String::new())),
        id,
    )
}

#[test]
fn the_push_loop_gets_past_bad_answers_and_keeps_attesting() {
    let sw = SwtpmTcp::start().unwrap();
    let dir = tempfile_dir();
    let (tpm, agent_id) = service(&format!("tcp://127.0.0.1:{}", sw.port), &dir);
    let seen = Arc::new(Seen::default());
    let metrics = Arc::new(Metrics::new(Vec::new()));
    let rt = keylet::cli::runtime().unwrap();
    let worker = keylet::executor::TpmWorker::default();
    rt.block_on(async {
        // As `keylet run` does: the TPM's commands wait on the runtime.
        assert!(tpm.watch(), "swtpm's TCP link cannot be watched");
        worker.as_tasks();
        let (port, ca) = stand_in(Arc::clone(&seen)).await;
        std::fs::write(dir.join("ca.pem"), ca).unwrap();
        let settings = PushSettings {
            mode: AttestationMode::Push,
            verifier_url: VerifierUrl {
                host: "127.0.0.1".into(),
                port,
                prefix: String::new(),
            },
            verifier_tls_ca_cert: dir.join("ca.pem"),
            attestation_interval: Duration::from_secs(1),
            uefi_logs_evidence_version: "2.1".into(),
            server_identifier: "ak".into(),
        };
        let agent = PushAgent {
            verifier: Verifier::new(&settings, &agent_id).unwrap(),
            tpm: Arc::clone(&tpm) as Arc<dyn keylet::server::Attestation>,
            worker: worker.clone(),
            sources: Sources {
                ima: None,
                uefi: None,
                boot_time: "2026-01-01T00:00:00+00:00".into(),
                uefi_version: "2.1".into(),
                server_identifier: "ak".into(),
            },
            fallback: Duration::from_secs(1),
            metrics: Some(Arc::clone(&metrics)),
        };
        // Runs until the stand-in has seen the rounds, or the bound.
        let seen_rounds = Arc::clone(&seen);
        let t0 = Instant::now();
        agent
            .run(async move {
                while seen_rounds.evidence.load(Ordering::SeqCst) < ROUNDS && t0.elapsed() < BOUND {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await;
        assert!(TpmAttestation::shutdown(&tpm, &worker, Duration::from_secs(5)).await);
    });
    let evidence = seen.evidence.load(Ordering::SeqCst);
    assert!(
        seen.sessions.load(Ordering::SeqCst) >= 3,
        "the bad session answers stopped the loop"
    );
    assert_eq!(
        seen.proofs.load(Ordering::SeqCst),
        1,
        "one good session is enough"
    );
    assert!(
        evidence >= ROUNDS,
        "only {evidence} evidence rounds in {BOUND:?}"
    );
    assert_eq!(
        seen.quotes_ok.load(Ordering::SeqCst),
        evidence,
        "a quote without the challenge"
    );
    let paths = seen.evidence_paths.lock().unwrap();
    assert!(
        paths[0].ends_with("/attestations/latest"),
        "bogus Location followed: {}",
        paths[0]
    );
    assert!(paths[1].ends_with("/attestations/0"), "{}", paths[1]);
    let text = metrics.render();
    assert!(
        text.contains("keylet_push_last_pass_timestamp_seconds 1796000000"),
        "{text}"
    );
    assert!(
        text.contains(r#"keylet_push_verifier_answers_total{status="429"} 1"#),
        "{text}"
    );
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("keylet-push-loop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
