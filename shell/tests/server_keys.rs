//! `/keys/ukey`, `/keys/vkey` and `/keys/verify` over HTTP, with the JSON
//! bodies Keylime 7.14.3's tenant and verifier send.
#![cfg(feature = "payload")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod payload_support;
mod server_support;

use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use payload_support::{Vectors, bootstrap, defaults};
use serde_json::{Value, json};
use server_support::{http, start};
use tokio::net::TcpStream;

async fn post(addr: std::net::SocketAddr, path: &str, body: Vec<u8>) -> (u16, Value) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = Request::builder()
        .method("POST")
        .uri(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

async fn post_json(addr: std::net::SocketAddr, path: &str, body: &Value) -> (u16, Value) {
    post(addr, path, serde_json::to_vec(body).unwrap()).await
}

#[tokio::test]
async fn tenant_and_verifier_bodies_derive_k_and_verify_answers_the_tenants_hmac() {
    let vectors = Vectors::load();
    let c = vectors.case("file");
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(bootstrap(dir.path(), defaults().payload, true));
    let s = start(None, |settings| {
        settings.payload_keys = Some(Arc::clone(&keys));
    })
    .await;
    let verify = format!("/v2.6/keys/verify?challenge={}", vectors.challenge);

    let r = http(s.addr, "GET", &verify).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["status"], "Bootstrap key not yet available.");

    // What keylime_tenant posts (tenant.py do_quote): encrypted_key, auth_tag, payload.
    let (code, body) = post_json(
        s.addr,
        "/v2.6/keys/ukey",
        &json!({"encrypted_key": c.encrypted_u_b64, "auth_tag": c.auth_tag,
                "payload": c.payload_b64}),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], "Success");
    // What the verifier posts (cloud_verifier_tornado): encrypted_key only.
    for _ in 0..2 {
        let (code, body) = post_json(
            s.addr,
            "/v2.1/keys/vkey",
            &json!({"encrypted_key": c.encrypted_v_b64}),
        )
        .await;
        assert_eq!(code, 200, "{body}");
    }
    let r = http(s.addr, "GET", &verify).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["results"], json!({"hmac": c.verify_hmac}));
    let delivered = keys.wait_for_delivery().unwrap().unwrap();
    assert_eq!(
        std::fs::read(delivered.dir.join("decrypted_payload")).unwrap(),
        c.plaintext
    );
    s.shutdown().await;
}

#[tokio::test]
async fn malformed_key_requests_are_400s_saying_what_is_wrong() {
    let vectors = Vectors::load();
    let c = vectors.case("file");
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(bootstrap(dir.path(), defaults().payload, true));
    let s = start(None, |settings| {
        settings.payload_keys = Some(Arc::clone(&keys));
    })
    .await;
    let cases = [
        (
            json!({"encrypted_key": "not base64!", "auth_tag": c.auth_tag}),
            "Invalid base64 encoding in encrypted_key",
        ),
        (
            json!({"encrypted_key": c.encrypted_u_b64, "auth_tag": "xyz"}),
            "Invalid hex encoding in auth_tag",
        ),
        (
            json!({"encrypted_key": c.encrypted_u_b64, "auth_tag": "abcd"}),
            "auth tag length 2 does not correspond to valid SHA-384 HMAC",
        ),
        (
            json!({"encrypted_key": c.encrypted_u_b64, "auth_tag": c.auth_tag, "payload": "%%"}),
            "Invalid base64 encoding in payload",
        ),
        (
            json!({"encrypted_key": "AAAA", "auth_tag": c.auth_tag}),
            "Failed to decrypt encrypted_key",
        ),
        (json!({"auth_tag": c.auth_tag}), "Invalid JSON body"),
    ];
    for (body, want) in cases {
        let (code, reply) = post_json(s.addr, "/v2.6/keys/ukey", &body).await;
        assert_eq!(code, 400, "{body}");
        let status = reply["status"].as_str().unwrap();
        assert!(status.starts_with(want), "{body}: {status}");
    }
    let (code, reply) = post(s.addr, "/v2.6/keys/vkey", b"{not json".to_vec()).await;
    assert_eq!(code, 400);
    assert!(
        reply["status"]
            .as_str()
            .unwrap()
            .starts_with("Invalid JSON body")
    );

    let too_big = vec![b' '; keys.max_request_bytes() + 1];
    let (code, reply) = post(s.addr, "/v2.6/keys/ukey", too_big).await;
    assert_eq!(code, 413);
    assert!(reply["status"].as_str().unwrap().contains("secure_size"));

    for (query, want) in [
        ("", "No challenge provided."),
        ("challenge=", "No challenge provided."),
        (
            "challenge=abc%2F",
            "Parameters should be strictly alphanumeric: challenge",
        ),
    ] {
        let r = http(s.addr, "GET", &format!("/v2.6/keys/verify?{query}")).await;
        assert_eq!(r.status, 400, "{query}");
        assert_eq!(r.json()["status"], want, "{query}");
    }
    // Nothing above produced a key.
    assert!(keys.verify(&vectors.challenge).is_none());
    s.shutdown().await;
}
