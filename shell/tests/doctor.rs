#![cfg(feature = "doctor")]
//! `keylet doctor` made to fail on purpose, one check at a time, with real
//! files, real certificates and real (closed or occupied) ports: the binary
//! is run as an operator runs it and its JSON report is read.
//! The all-OK path against swtpm and the real registrar is the e2e suite
//! tests/e2e/doctor.sh.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod pki_support;

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use pki_support::ca_params;
use rcgen::{CertificateParams, KeyPair};
use serde_json::Value;
use time::{Duration, OffsetDateTime};

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Host {
    dir: tempfile::TempDir,
    options: Vec<(String, String)>,
}

impl Host {
    /// A config with no TPM and no registrar reachable, files in a temp dir.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("state")).unwrap();
        fs::write(dir.path().join("ima"), b"").unwrap();
        fs::write(dir.path().join("mb"), b"\0").unwrap();
        let mut host = Self {
            dir,
            options: Vec::new(),
        };
        let d = host.dir.path().display().to_string();
        host.set("uuid", "hash_ek")
            .set("ip", "127.0.0.1")
            .set("port", &closed_port().to_string())
            .set("registrar_ip", "127.0.0.1")
            .set("registrar_port", &closed_port().to_string())
            .set("keylime_dir", &format!("{d}/state"))
            .set("enable_agent_mtls", "false")
            .set("tpm_device", &format!("tcp://127.0.0.1:{}", closed_port()))
            .set("run_as", "")
            .set("ima_ml_path", &format!("{d}/ima"))
            .set("measuredboot_ml_path", &format!("{d}/mb"));
        host
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn set(&mut self, key: &str, value: &str) -> &mut Self {
        self.options.retain(|(k, _)| k != key);
        self.options.push((key.into(), value.into()));
        self
    }

    fn write_config(&self) -> PathBuf {
        let mut text = String::from("[agent]\n");
        for (k, v) in &self.options {
            if v == "true" || v == "false" || v.parse::<u32>().is_ok() {
                text.push_str(&format!("{k} = {v}\n"));
            } else {
                text.push_str(&format!("{k} = {v:?}\n"));
            }
        }
        let path = self.dir.path().join("agent.conf");
        fs::write(&path, text).unwrap();
        path
    }

    /// Runs `keylet doctor --json`; returns the exit code and the report.
    fn doctor(&self) -> (i32, Value) {
        let config = self.write_config();
        let out = Command::new(env!("CARGO_BIN_EXE_keylet"))
            .args(["doctor", "--json"])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("KEYLIME_AGENT_CONFIG", &config)
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let json: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}; stderr {:?}", out.stderr));
        (out.status.code().unwrap(), json)
    }
}

/// The named check(s): (status, detail, fix) of each.
fn checks(report: &Value, name: &str) -> Vec<(String, String, String)> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == name)
        .map(|c| {
            (
                c["status"].as_str().unwrap().to_string(),
                c["detail"].as_str().unwrap().to_string(),
                c["fix"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn one(report: &Value, name: &str) -> (String, String, String) {
    let mut found = checks(report, name);
    assert_eq!(found.len(), 1, "{name} in {report:#}");
    found.remove(0)
}

fn ca(cn: &str) -> (CertificateParams, KeyPair) {
    (ca_params(cn), KeyPair::generate().unwrap())
}

/// A self-signed CA certificate valid until `now + left`.
fn ca_pem_expiring(dir: &Path, name: &str, left: Duration) -> String {
    let (mut p, key) = ca("keylet doctor test CA");
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::days(30);
    p.not_after = now + left;
    let path = dir.join(name);
    fs::write(&path, p.self_signed(&key).unwrap().pem()).unwrap();
    path.display().to_string()
}

#[test]
fn no_tpm_and_no_registrar_fail_with_the_fix_and_exit_1() {
    let host = Host::new();
    let (code, r) = host.doctor();
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["status"], "fail");
    let (status, detail, fix) = one(&r, "tpm.device");
    assert_eq!(status, "fail");
    assert!(detail.contains("tcp://127.0.0.1:"), "{detail}");
    assert!(fix.contains("swtpm"), "{fix}");
    let (status, detail, fix) = one(&r, "registrar");
    assert_eq!(status, "fail");
    assert!(detail.contains("unreachable"), "{detail}");
    assert!(fix.contains("registrar_ip"), "{fix}");
    // Without the EK, hash_ek cannot be computed: a warning, not a guess.
    assert_eq!(one(&r, "identity.uuid").0, "warn");
    // The rest is checked all the same.
    assert_eq!(one(&r, "listen").0, "ok");
    assert_eq!(one(&r, "logs.ima").0, "ok");
    assert_eq!(one(&r, "config").0, "ok");
}

#[test]
fn the_placeholder_uuid_fails() {
    let mut host = Host::new();
    host.set("uuid", "d432fbb3-d2f1-4a97-9ef7-75bd81c00000");
    let (_, r) = host.doctor();
    let (status, detail, fix) = one(&r, "identity.uuid");
    assert_eq!(status, "fail");
    assert!(detail.contains("placeholder"), "{detail}");
    assert!(fix.contains("hash_ek"), "{fix}");
}

#[test]
fn a_key_file_readable_by_others_fails_with_chmod() {
    let host = Host::new();
    let nk = host.dir.path().join("state/payload-private.pem");
    fs::write(&nk, "-----BEGIN PRIVATE KEY-----\n").unwrap();
    fs::set_permissions(&nk, fs::Permissions::from_mode(0o644)).unwrap();
    let (code, r) = host.doctor();
    assert_eq!(code, 1);
    let (status, detail, fix) = one(&r, "keys.nk");
    assert_eq!(status, "fail");
    assert!(detail.contains("0644"), "{detail}");
    assert!(
        fix.contains(&format!("chmod 600 {}", nk.display())),
        "{fix}"
    );
}

#[test]
fn an_mtls_key_that_is_not_the_certificates_fails() {
    let mut host = Host::new();
    host.set("enable_agent_mtls", "true");
    let state = host.dir.path().join("state");
    let ca = ca_pem_expiring(host.dir.path(), "ca.crt", Duration::days(365));
    host.set("trusted_client_ca", &ca);
    let key = KeyPair::generate().unwrap();
    let other = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    fs::write(state.join("server-cert.crt"), cert.pem()).unwrap();
    let key_path = state.join("server-private.pem");
    fs::write(&key_path, other.serialize_pem()).unwrap();
    fs::set_permissions(&key_path, fs::Permissions::from_mode(0o600)).unwrap();
    let (_, r) = host.doctor();
    let (status, detail, _) = one(&r, "keys.mtls");
    assert_eq!(status, "fail", "{detail}");
    assert!(detail.contains("do not belong together"), "{detail}");
    // With the matching key it is OK.
    fs::write(&key_path, key.serialize_pem()).unwrap();
    let (_, r) = host.doctor();
    assert_eq!(one(&r, "keys.mtls").0, "ok");
    assert_eq!(one(&r, "certs.server_cert").0, "ok");
}

#[test]
fn certificate_expiry_warns_under_7_days_and_fails_under_3_or_expired() {
    for (left, want, words) in [
        (Duration::days(5), "warn", "expires in"),
        (Duration::minutes(30 * 60 + 30), "fail", "expires in 30 h"),
        (Duration::days(-1), "fail", "expired"),
        (Duration::days(60), "ok", "valid for"),
    ] {
        let mut host = Host::new();
        host.set("enable_agent_mtls", "true");
        let ca = ca_pem_expiring(host.dir.path(), "ca.crt", left);
        host.set("trusted_client_ca", &ca);
        let (code, r) = host.doctor();
        let (status, detail, fix) = one(&r, "certs.trusted_client_ca");
        assert_eq!(status, want, "{left}: {detail}");
        assert!(detail.contains(words), "{left}: {detail}");
        if want != "ok" {
            assert!(fix.contains("renew"), "{fix}");
        }
        assert_eq!(code, 1); // the TPM is not there in any case
    }
}

#[test]
fn a_ca_bundle_without_the_root_is_reported() {
    let mut host = Host::new();
    host.set("enable_agent_mtls", "true");
    let (root_params, root_key) = ca("keylet doctor root");
    let root = root_params.self_signed(&root_key).unwrap();
    let issuer = rcgen::Issuer::new(root_params, root_key);
    let (mid_params, mid_key) = ca("keylet doctor intermediate");
    let mid = mid_params.signed_by(&mid_key, &issuer).unwrap();
    let only_mid = host.dir.path().join("mid.crt");
    fs::write(&only_mid, mid.pem()).unwrap();
    host.set("trusted_client_ca", &only_mid.display().to_string());
    let (_, r) = host.doctor();
    let (status, detail, fix) = one(&r, "certs.trusted_client_ca_chain");
    assert_eq!(status, "warn");
    assert!(detail.contains("CN=keylet doctor root"), "{detail}");
    assert!(fix.contains("append"), "{fix}");
    // The full chain in the bundle: OK.
    fs::write(&only_mid, format!("{}{}", mid.pem(), root.pem())).unwrap();
    let (_, r) = host.doctor();
    assert_eq!(one(&r, "certs.trusted_client_ca_chain").0, "ok");
}

#[test]
fn an_unreadable_ima_list_fails_and_a_missing_one_warns() {
    let mut host = Host::new();
    let ima = host.dir.path().join("ima-unreadable");
    // Root reads any file whatever its mode; a directory it cannot read as a list.
    if nix::unistd::geteuid().is_root() {
        fs::create_dir(&ima).unwrap();
    } else {
        fs::write(&ima, b"10 x ima-ng sha256:00 /init\n").unwrap();
        fs::set_permissions(&ima, fs::Permissions::from_mode(0o000)).unwrap();
    }
    host.set("ima_ml_path", &ima.display().to_string());
    let (_, r) = host.doctor();
    let (status, detail, _) = one(&r, "logs.ima");
    assert_eq!(status, "fail", "{detail}");
    assert!(detail.contains("cannot be read"), "{detail}");
    host.set("ima_ml_path", &host.path("does-not-exist"));
    let (_, r) = host.doctor();
    assert_eq!(one(&r, "logs.ima").0, "warn");
}

#[test]
fn a_listen_port_held_by_another_program_fails() {
    let mut host = Host::new();
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = other.local_addr().unwrap().port();
    host.set("port", &port.to_string());
    let (_, r) = host.doctor();
    let (status, detail, fix) = one(&r, "listen");
    assert_eq!(status, "fail", "{detail}");
    assert!(detail.contains("not this keylet"), "{detail}");
    assert!(fix.contains(&format!(":{port}")), "{fix}");
}

#[test]
fn an_unusable_config_exits_2_and_names_the_option() {
    let mut host = Host::new();
    host.set("tpm_hash_alg", "md5");
    let (code, r) = host.doctor();
    assert_eq!(code, 2);
    let (status, detail, fix) = one(&r, "config");
    assert_eq!(status, "fail");
    assert!(detail.contains("tpm_hash_alg"), "{detail}");
    assert!(fix.contains("agent.conf"), "{fix}");
    assert_eq!(r["checks"].as_array().unwrap().len(), 1);
}

#[test]
fn the_text_report_has_one_line_per_check_and_a_summary() {
    let host = Host::new();
    let config = host.write_config();
    let out = Command::new(env!("CARGO_BIN_EXE_keylet"))
        .arg("doctor")
        .env_clear()
        .env("KEYLIME_AGENT_CONFIG", &config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("OK   config: parsed files "), "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("FAIL tpm.device: ") && l.contains("; fix: ")),
        "{text}"
    );
    assert!(lines.last().unwrap().ends_with("FAIL"), "{text}");
}
