//! keylet's metrics against a real swtpm: quotes served by keylet's own
//! agent API server, then `GET /metrics` from its metrics listener, parsed
//! by a strict OpenMetrics parser.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keylet::metrics::Metrics;
use keylet_tests::agent::Agent;
use keylet_tests::swtpm::SwtpmTcp;
use openmetrics_parser::openmetrics::parse_openmetrics;
use openmetrics_parser::{MetricsExposition, OpenMetricsType, OpenMetricsValue};

type Exposition = MetricsExposition<OpenMetricsType, OpenMetricsValue>;

fn unix_now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// One HTTP/1.1 GET; returns (status, body).
fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1.to_string();
    (status, body)
}

/// A self-signed certificate valid for `days`, via openssl.
fn openssl_cert(dir: &Path, name: &str, days: u32) -> PathBuf {
    let cert = dir.join(format!("{name}.crt"));
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-days",
            &days.to_string(),
        ])
        .arg("-keyout")
        .arg(dir.join(format!("{name}.key")))
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    cert
}

fn family<'a>(
    e: &'a Exposition,
    name: &str,
) -> &'a openmetrics_parser::MetricFamily<OpenMetricsType, OpenMetricsValue> {
    e.families
        .get(name)
        .unwrap_or_else(|| panic!("no family {name}"))
}

fn counter(e: &Exposition, endpoint: &str, result: &str) -> f64 {
    let f = family(e, "keylet_quotes");
    let s = f
        .get_sample_by_label_values(&[endpoint.into(), result.into()])
        .unwrap();
    match &s.value {
        OpenMetricsValue::Counter(c) => c.value.as_f64(),
        other => panic!("keylet_quotes is {other:?}"),
    }
}

fn tpm_errors(e: &Exposition, kind: &str) -> f64 {
    let f = family(e, "keylet_tpm_errors");
    let s = f.get_sample_by_label_values(&[kind.into()]).unwrap();
    match &s.value {
        OpenMetricsValue::Counter(c) => c.value.as_f64(),
        other => panic!("keylet_tpm_errors is {other:?}"),
    }
}

fn gauge(e: &Exposition, name: &str, labels: &[String]) -> Option<f64> {
    let s = family(e, name).get_sample_by_label_values(labels)?;
    match &s.value {
        OpenMetricsValue::Gauge(n) => Some(n.as_f64()),
        other => panic!("{name} is {other:?}"),
    }
}

fn tpm_count(e: &Exposition, command: &str) -> u64 {
    let f = family(e, "keylet_tpm_command_duration_seconds");
    match f
        .get_sample_by_label_values(&[command.into()])
        .map(|s| &s.value)
    {
        Some(OpenMetricsValue::Histogram(h)) => {
            let count = h.count.unwrap();
            let inf = h.buckets.last().unwrap();
            assert!(inf.upper_bound.is_infinite());
            assert_eq!(inf.count.as_f64() as u64, count, "+Inf bucket == count");
            count
        }
        None => 0,
        Some(other) => panic!("histogram expected, got {other:?}"),
    }
}

fn scrape(addr: SocketAddr) -> Exposition {
    let (status, body) = get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    parse_openmetrics(&body).unwrap_or_else(|e| panic!("not OpenMetrics: {e:?}\n{body}"))
}

#[test]
fn quotes_move_the_counters_and_the_scrape_parses() {
    let swtpm = SwtpmTcp::start().unwrap();
    let dir = tempfile_dir();
    let short = openssl_cert(&dir, "short", 2);
    let long = openssl_cert(&dir, "long", 30);
    let bundle = dir.join("bundle.crt");
    let both = [
        std::fs::read(&long).unwrap(),
        std::fs::read(&short).unwrap(),
    ]
    .concat();
    std::fs::write(&bundle, both).unwrap();
    let missing = dir.join("missing.crt");
    let metrics = Arc::new(Metrics::new(vec![
        long.clone(),
        bundle.clone(),
        missing.clone(),
    ]));

    // keylet's own start-up steps (EK, AK, payload key, the quote service)
    // and its agent API (plain HTTP) and metrics listener.
    let agent = Agent::start_with(
        &format!("tcp://127.0.0.1:{}", swtpm.port),
        Duration::from_secs(10),
        Arc::clone(&metrics),
    )
    .unwrap();
    let (api, metrics_addr) = (agent.api, agent.metrics);

    // Nothing served yet: every quote series exists at zero.
    let before = scrape(metrics_addr);
    for (endpoint, result) in [("identity", "ok"), ("integrity", "error")] {
        assert_eq!(counter(&before, endpoint, result), 0.0);
    }
    assert_eq!(gauge(&before, "keylet_registered", &[]), Some(0.0));
    assert_eq!(
        gauge(&before, "keylet_last_quote_timestamp_seconds", &[]),
        Some(0.0)
    );
    let quotes_before = tpm_count(&before, "quote");
    for kind in ["timeout", "connection", "malformed", "retry", "deadline"] {
        assert_eq!(tpm_errors(&before, kind), 0.0, "{kind} errors before any");
    }

    let t0 = unix_now();
    for _ in 0..3 {
        let (status, body) = get(api, "/v2.2/quotes/identity?nonce=abcdefghij0123456789");
        assert_eq!(status, 200, "{body}");
    }
    for _ in 0..2 {
        let (status, body) = get(
            api,
            "/v2.6/quotes/integrity?nonce=abcdefghij0123456789&mask=0x1&partial=1",
        );
        assert_eq!(status, 200, "{body}");
    }
    // A bad nonce never reaches the TPM: not counted.
    assert_eq!(get(api, "/v2.2/quotes/identity?nonce=bad!nonce").0, 400);
    let t1 = unix_now();
    metrics.set_registered(true);

    let after = scrape(metrics_addr);
    assert_eq!(counter(&after, "identity", "ok"), 3.0);
    assert_eq!(counter(&after, "integrity", "ok"), 2.0);
    assert_eq!(counter(&after, "identity", "error"), 0.0);
    assert_eq!(counter(&after, "integrity", "error"), 0.0);
    assert!(tpm_count(&after, "quote") >= quotes_before + 5);
    // PCR 16 is bound to the payload key by the first quote; the others find
    // it bound and send PCR_Read and Quote only.
    assert_eq!(tpm_count(&after, "pcr_reset"), 1);
    assert_eq!(tpm_count(&after, "pcr_extend"), 1);
    assert!(tpm_count(&after, "pcr_read") >= 5);
    // Start-up commands were timed too (the EK persisted at its TCG handle is read).
    assert!(tpm_count(&after, "read_public") >= 1);
    assert!(tpm_count(&after, "create") >= 1);
    let last = gauge(&after, "keylet_last_quote_timestamp_seconds", &[]).unwrap() as i64;
    assert!((t0..=t1).contains(&last), "{t0} <= {last} <= {t1}");
    assert_eq!(gauge(&after, "keylet_registered", &[]), Some(1.0));

    // Certificate expiry: notAfter of each file, the earliest of a bundle,
    // nothing for an unreadable file.
    let expiry = |p: &Path| {
        gauge(
            &after,
            "keylet_certificate_expiry_timestamp_seconds",
            &[p.display().to_string()],
        )
    };
    let near = |value: Option<f64>, days: i64| {
        let v = value.unwrap() as i64;
        let want = t0 + days * 86_400;
        assert!((v - want).abs() < 120, "expiry {v}, expected about {want}");
    };
    near(expiry(&long), 30);
    near(expiry(&bundle), 2);
    assert_eq!(expiry(&missing), None);

    // The TPM goes away: the next quote fails and is counted as an error.
    drop(swtpm);
    let (status, _) = get(api, "/v2.2/quotes/identity?nonce=abcdefghij0123456789");
    assert_eq!(status, 500);
    let failed = scrape(metrics_addr);
    assert_eq!(counter(&failed, "identity", "error"), 1.0);
    assert_eq!(counter(&failed, "identity", "ok"), 3.0);
    assert!(
        tpm_errors(&failed, "connection") >= 1.0,
        "the lost TPM is counted"
    );
    assert_eq!(
        gauge(&failed, "keylet_last_quote_timestamp_seconds", &[]).map(|v| v as i64),
        Some(last),
        "a failed quote does not move the last quote time"
    );

    // Only GET /metrics is served.
    assert_eq!(get(metrics_addr, "/").0, 404);

    drop(agent);
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keylet-metrics-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
