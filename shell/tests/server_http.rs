//! The agent API over plain HTTP: routing, versions, parameters, errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod server_support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;
use server_support::{PUBKEY_PEM, http, start};

const NONCE: &str = "abcDEF0123456789wxyz";

#[tokio::test]
async fn version_body_is_exact_and_compact() {
    let s = start(None, |_| {}).await;
    for path in ["/version", "/version/"] {
        let r = http(s.addr, "GET", path).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(
            r.text(),
            r#"{"code":200,"status":"Success","results":{"supported_version":"2.6","supported_versions":["2.1","2.2","2.3","2.4","2.5","2.6"]}}"#
        );
    }
    let r = http(s.addr, "POST", "/version").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.headers["allow"], "GET");
    s.shutdown().await;
}

#[tokio::test]
async fn enabled_versions_are_the_ones_advertised_and_served() {
    use keylet::server::{ApiVersion, ApiVersions};
    let s = start(None, |c| {
        c.versions = ApiVersions::new([ApiVersion::new(2, 5), ApiVersion::new(2, 6)]).unwrap();
    })
    .await;
    let r = http(s.addr, "GET", "/version").await;
    assert_eq!(
        r.json()["results"],
        json!({"supported_version":"2.6","supported_versions":["2.5","2.6"]})
    );
    let r = http(s.addr, "GET", "/v2.1/keys/pubkey").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["status"], "API version not supported: v2.1");
    s.shutdown().await;
}

#[tokio::test]
async fn versions_capped_at_the_registrars_are_offered_but_newer_ones_still_served() {
    use keylet::server::{ApiVersion, ApiVersions};
    let s = start(None, |c| {
        c.versions = ApiVersions::default().offer(false, ApiVersion::new(2, 3)).0;
    })
    .await;
    let r = http(s.addr, "GET", "/version").await;
    assert_eq!(
        r.json()["results"],
        json!({"supported_version":"2.3","supported_versions":["2.1","2.2","2.3"]})
    );
    // A verifier that stored 2.6 before keeps being answered.
    let r = http(s.addr, "GET", "/v2.6/keys/pubkey").await;
    assert_eq!(r.status, 200, "{}", r.text());
    s.shutdown().await;
}

#[tokio::test]
async fn every_endpoint_answers_in_every_version() {
    let s = start(None, |c| c.boottime = Some(1_767_225_600)).await;
    for minor in 1..=6u8 {
        let v = format!("v2.{minor}");
        let enc = if minor >= 5 { "rsa2048" } else { "rsa" };

        let r = http(
            s.addr,
            "GET",
            &format!("/{v}/quotes/identity?nonce={NONCE}"),
        )
        .await;
        assert_eq!(r.status, 200, "{v}: {}", r.text());
        assert_eq!(
            r.json(),
            json!({"code":200,"status":"Success","results":{
                "quote": format!("r{NONCE}:10000:blob"),
                "hash_alg":"sha256","enc_alg":enc,"sign_alg":"rsassa",
                "pubkey": PUBKEY_PEM, "boottime": 1_767_225_600u64}})
        );

        let path =
            format!("/{v}/quotes/integrity?nonce={NONCE}&mask=0x400400&partial=1&ima_ml_entry=0");
        let r = http(s.addr, "GET", &path).await;
        assert_eq!(r.status, 200, "{v}: {}", r.text());
        assert_eq!(
            r.json()["results"],
            json!({"quote": format!("r{NONCE}:410400:blob"), "hash_alg":"sha256",
                   "enc_alg":enc,"sign_alg":"rsassa","boottime":1_767_225_600u64})
        );

        let r = http(s.addr, "GET", &format!("/{v}/keys/pubkey")).await;
        assert_eq!(r.json()["results"], json!({"pubkey": PUBKEY_PEM}));

        let r = http(s.addr, "GET", &format!("/{v}/agent/info")).await;
        if minor >= 2 {
            assert_eq!(
                r.json()["results"],
                json!({"agent_uuid":"d432fbb3-d2f1-4a97-9ef7-75bd81c00000","tpm_hash_alg":"sha256",
                       "tpm_enc_alg":enc,"tpm_sign_alg":"rsassa","ak_handle":2_147_483_649u32})
            );
        } else {
            assert_eq!(r.status, 400);
            assert_eq!(
                r.json()["status"],
                "Not Implemented: Use /keys, or /quotes interfaces"
            );
        }
    }
    s.shutdown().await;
}

#[tokio::test]
async fn integrity_quotes_mask_plus_pcr16_and_pubkey_only_when_not_partial() {
    let s = start(None, |_| {}).await;
    let r = http(
        s.addr,
        "GET",
        &format!("/v2.6/quotes/integrity/?nonce={NONCE}&mask=0x0&partial=0&ima_ml_entry=0"),
    )
    .await;
    assert_eq!(r.status, 200);
    let results = &r.json()["results"];
    assert_eq!(results["pubkey"], PUBKEY_PEM);
    assert!(results.get("boottime").is_none());
    assert!(results.get("ima_measurement_list").is_none());
    assert!(results.get("mb_measurement_list").is_none());
    let calls = s.tpm.calls.lock().unwrap().clone();
    assert_eq!(calls, vec![(NONCE.to_owned(), 0x10000)]);
    s.shutdown().await;
}

#[tokio::test]
async fn unsupported_versions_get_the_renegotiation_text() {
    let s = start(None, |_| {}).await;
    for (path, method) in [
        ("/v3.0/quotes/integrity?nonce=a&mask=0&partial=0", "GET"),
        ("/v2.0/quotes/identity?nonce=a", "GET"),
        ("/v1.0/keys/vkey", "POST"),
        ("/v2.7/agent/info", "GET"),
    ] {
        let r = http(s.addr, method, path).await;
        assert_eq!(r.status, 400, "{path}");
        let status = r.json()["status"].as_str().unwrap().to_owned();
        let version = path.split('/').nth(1).unwrap();
        assert_eq!(status, format!("API version not supported: {version}"));
        assert_eq!(r.json()["results"], json!({}));
    }
    s.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_and_methods_get_keylimes_errors() {
    let s = start(None, |_| {}).await;
    let cases: &[(&str, &str, u16, &str)] = &[
        (
            "GET",
            "/",
            400,
            "Not Implemented: Use /v2.1, /v2.2, /v2.3, /v2.4, /v2.5, /v2.6 or /version interfaces",
        ),
        (
            "POST",
            "/foo",
            400,
            "Not Implemented: Use /v2.1, /v2.2, /v2.3, /v2.4, /v2.5, /v2.6 or /version interfaces",
        ),
        (
            "GET",
            "/v2.6/nothing",
            400,
            "Not Implemented: Use /agent, /keys, or /quotes interfaces",
        ),
        (
            "POST",
            "/v2.6/nothing",
            400,
            "Not Implemented: Use /keys or /notifications interfaces",
        ),
        (
            "GET",
            "/v2.6/quotes/other",
            400,
            "URI not supported, only /identity and /integrity are supported for GET in /quotes/ interface",
        ),
        (
            "GET",
            "/v2.6/keys/other",
            400,
            "URI not supported, only /pubkey and /verify are supported for GET in /keys interface",
        ),
        (
            "POST",
            "/v2.6/keys/other",
            400,
            "URI not supported, only /ukey and /vkey are supported for POST in /keys interface",
        ),
        (
            "GET",
            "/v2.6/keys/verify?challenge=abc",
            400,
            "Bootstrap key not yet available.",
        ),
    ];
    for (method, path, code, status) in cases {
        let r = http(s.addr, method, path).await;
        assert_eq!(r.status.as_u16(), *code, "{method} {path}");
        assert_eq!(r.json()["code"], *code, "{method} {path}");
        assert_eq!(r.json()["status"], *status, "{method} {path}");
    }
    let r = http(s.addr, "POST", "/v2.6/keys/ukey").await;
    assert_eq!(r.status, 400);
    // A revocation notification without a body is refused with the reason.
    let r = http(s.addr, "POST", "/v2.6/notifications/revocation").await;
    assert_eq!(r.status, 400);
    let status = r.json()["status"].as_str().unwrap_or_default().to_string();
    assert!(status.starts_with("Invalid JSON body"), "{status}");
    for (method, path, allow) in [
        ("DELETE", "/foo", "GET, POST"),
        ("PUT", "/v2.6/nothing", "GET, POST"),
        ("POST", "/v2.6/quotes/identity", "GET"),
        ("DELETE", "/v2.6/keys/pubkey", "GET, POST"),
        ("POST", "/v2.6/agent/info", "GET"),
        ("GET", "/v2.6/notifications/revocation", "POST"),
    ] {
        let r = http(s.addr, method, path).await;
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(r.headers["allow"], allow, "{method} {path}");
    }
    s.shutdown().await;
}

#[tokio::test]
async fn bad_parameters_are_400s_naming_the_parameter() {
    let s = start(None, |_| {}).await;
    let long = "a".repeat(65);
    let cases = [
        ("/v2.6/quotes/identity", "nonce"),
        ("/v2.6/quotes/identity?nonce=", "nonce"),
        ("/v2.6/quotes/identity?nonce=abc%21", "nonce"),
        ("/v2.6/quotes/identity?nonce=ab%C3%A9", "nonce"),
        (
            &format!("/v2.6/quotes/identity?nonce={long}") as &str,
            "Nonce is too long (max size 64): 65",
        ),
        ("/v2.6/quotes/integrity?mask=0x1&partial=0", "nonce"),
        ("/v2.6/quotes/integrity?nonce=abc&partial=0", "mask"),
        (
            "/v2.6/quotes/integrity?nonce=abc&mask=0xzz&partial=0",
            "mask",
        ),
        ("/v2.6/quotes/integrity?nonce=abc&mask=&partial=0", "mask"),
        (
            "/v2.6/quotes/integrity?nonce=abc&mask=0x1000000&partial=0",
            "mask",
        ),
        (
            "/v2.6/quotes/integrity?nonce=abc&mask=0x100000000&partial=0",
            "mask",
        ),
        (
            "/v2.6/quotes/integrity?nonce=abc&mask=0x1",
            "uri must contain key 'partial' and value '0' or '1'",
        ),
        (
            "/v2.6/quotes/integrity?nonce=abc&mask=0x1&partial=2",
            "uri must contain key 'partial' and value '0' or '1'",
        ),
    ];
    for (path, needle) in cases {
        let r = http(s.addr, "GET", path).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        let status = r.json()["status"].as_str().unwrap().to_owned();
        assert!(status.contains(needle), "{path}: {status}");
    }
    assert!(
        s.tpm.calls.lock().unwrap().is_empty(),
        "no quote for a bad request"
    );
    // Accepted spellings: upper-case hex without 0x, ima_ml_entry garbage → 0.
    let r = http(
        s.addr,
        "GET",
        "/v2.6/quotes/integrity?nonce=abc&mask=FBFF&partial=1&ima_ml_entry=x",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.tpm.calls.lock().unwrap()[0].1, 0x1fbff);
    s.shutdown().await;
}

#[tokio::test]
async fn tpm_failure_is_500_with_keylimes_text() {
    let s = start(None, |_| {}).await;
    s.tpm.fail.store(true, Ordering::SeqCst);
    for path in [
        format!("/v2.6/quotes/identity?nonce={NONCE}"),
        format!("/v2.6/quotes/integrity?nonce={NONCE}&mask=0x400&partial=0&ima_ml_entry=0"),
    ] {
        let r = http(s.addr, "GET", &path).await;
        assert_eq!(r.status, 500);
        assert_eq!(
            r.text(),
            r#"{"code":500,"status":"Unable to retrieve quote","results":{}}"#
        );
    }
    s.shutdown().await;
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish() {
    let s = start(None, |_| {}).await;
    let (mut arrived, release) = s.tpm.hold_next_quote();
    let addr = s.addr;
    let in_flight = tokio::spawn(async move {
        http(addr, "GET", &format!("/v2.6/quotes/identity?nonce={NONCE}")).await
    });
    tokio::time::timeout(Duration::from_secs(10), arrived.recv())
        .await
        .expect("the quote never reached the TPM");
    // Stop the server while the quote is inside the TPM: the listener closes
    // at once, the request still gets its answer.
    let stopping = tokio::spawn(s.shutdown());
    let t0 = std::time::Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the listener did not close within 10 s of the shutdown"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !in_flight.is_finished(),
        "the quote answered before its release"
    );
    release.send(()).unwrap();
    stopping.await.unwrap();
    let r = in_flight.await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the listener is closed after shutdown"
    );
}
