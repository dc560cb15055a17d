//! Revocation notifications: the signature check with RSA-PSS (SHA-256,
//! largest salt), as Keylime's verifier signs them (made here with the
//! openssl command line), and the revocation actions.
#![cfg(feature = "payload")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keylet::config::{AgentConfig, RawConfig, RevocationCert, RevocationConfig};
use keylet::revocation::{Notification, RevocationError, Revocations};

/// keylet's configuration with every option at its default.
fn defaults() -> AgentConfig {
    AgentConfig::from_raw(&RawConfig::default(), &mut Vec::new()).unwrap()
}

/// A self-signed RSA-2048 certificate and its key in `dir`, named `name`.
fn make_ca(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (key, cert) = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.crt")),
    );
    let ok = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        ])
        .arg(format!("/CN={name}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    (key, cert)
}

/// Base64 RSA-PSS signature of `msg` (SHA-256, MGF1-SHA-256, max salt).
fn sign(key: &Path, msg: &str, dir: &Path) -> String {
    let file = dir.join("msg");
    std::fs::write(&file, msg).unwrap();
    let out = Command::new("openssl")
        .args([
            "dgst",
            "-sha256",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:max",
            "-sign",
        ])
        .arg(key)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    STANDARD.encode(out.stdout)
}

fn body(msg: &str, signature: &str) -> Notification {
    let json = serde_json::json!({ "msg": msg, "signature": signature }).to_string();
    keylet::keylime::decode(json.as_bytes()).unwrap()
}

const MSG: &str = r#"{"type": "revocation", "ip": "127.0.0.1", "agent_id": "failed-agent", "port": 9002, "tpm_policy": "{}", "meta_data": "{}", "event_time": "Tue Dec  1 03:00:00 2026"}"#;

fn payload_with_cert(dir: &Path, cert: &Path) -> PathBuf {
    let payload = dir.join("unzipped");
    std::fs::create_dir_all(&payload).unwrap();
    std::fs::copy(cert, payload.join("RevocationNotifier-cert.crt")).unwrap();
    payload
}

#[test]
fn a_signed_notification_verifies_and_a_forged_or_unsigned_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (key, cert) = make_ca(dir.path(), "revocation");
    let (other_key, _) = make_ca(dir.path(), "other");
    let payload = payload_with_cert(dir.path(), &cert);
    let r = Revocations::new(defaults().revocation, Some(payload), dir.path().into()).unwrap();

    let notice = r.verify(body(MSG, &sign(&key, MSG, dir.path()))).unwrap();
    assert_eq!(notice.agent_id, "failed-agent");

    let forged = r
        .verify(body(MSG, &sign(&other_key, MSG, dir.path())))
        .unwrap_err();
    assert!(
        matches!(forged, RevocationError::BadSignature { .. }),
        "{forged}"
    );
    let changed = MSG.replace("failed-agent", "another-agent");
    let err = r
        .verify(body(&changed, &sign(&key, MSG, dir.path())))
        .unwrap_err();
    assert!(matches!(err, RevocationError::BadSignature { .. }), "{err}");
    for unsigned in ["", "none"] {
        let err = r.verify(body(MSG, unsigned)).unwrap_err();
        assert!(matches!(err, RevocationError::Unsigned), "{err}");
    }
    let err = r.verify(body(MSG, "not base64!")).unwrap_err();
    assert!(matches!(err, RevocationError::Malformed(_)), "{err}");
    assert!(
        keylet::keylime::decode::<Notification>(b"{\"signature\": \"x\"}").is_err(),
        "msg is required"
    );
}

#[test]
fn without_a_certificate_nothing_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = make_ca(dir.path(), "revocation");
    let empty = dir.path().join("unzipped");
    std::fs::create_dir_all(&empty).unwrap();
    let r = Revocations::new(defaults().revocation, Some(empty), dir.path().into()).unwrap();
    let err = r
        .verify(body(MSG, &sign(&key, MSG, dir.path())))
        .unwrap_err();
    assert!(
        matches!(err, RevocationError::NoCertificate { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("keylime_tenant --cert"), "{err}");
    // A file that is not a certificate.
    let config = RevocationConfig {
        cert: RevocationCert::File(key.clone()),
        ..defaults().revocation
    };
    let r = Revocations::new(config, None, dir.path().into()).unwrap();
    let err = r
        .verify(body(MSG, &sign(&key, MSG, dir.path())))
        .unwrap_err();
    assert!(
        matches!(err, RevocationError::BadCertificate { .. }),
        "{err}"
    );
}

/// An action script that copies its input (the message) to `out`.
fn action(dir: &Path, name: &str, out: &Path) {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!("#!/bin/sh\ncat \"$1\" > {}\n", out.display()),
    )
    .unwrap();
    let mut p = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o700);
    std::fs::set_permissions(&path, p).unwrap();
}

#[test]
fn actions_run_only_when_enabled_and_get_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let (key, cert) = make_ca(dir.path(), "revocation");
    let payload = payload_with_cert(dir.path(), &cert);
    let installed = dir.path().join("actions");
    std::fs::create_dir_all(&installed).unwrap();
    let (out_cfg, out_payload) = (
        dir.path().join("from-config"),
        dir.path().join("from-payload"),
    );
    action(&installed, "local_action_cfg", &out_cfg);
    action(&payload, "local_action_payload", &out_payload);
    std::fs::write(payload.join("action_list"), "local_action_payload\n").unwrap();
    let config = RevocationConfig {
        actions: vec!["local_action_cfg".into()],
        actions_dir: installed.clone(),
        ..defaults().revocation
    };
    let signed = || body(MSG, &sign(&key, MSG, dir.path()));

    // Off by default: verified, logged, nothing runs.
    let r = Revocations::new(config.clone(), Some(payload.clone()), dir.path().into()).unwrap();
    assert!(r.act(&r.verify(signed()).unwrap()));
    assert!(!out_cfg.exists() && !out_payload.exists());

    let enabled = RevocationConfig {
        enable_actions: true,
        ..config.clone()
    };
    let r = Revocations::new(enabled.clone(), Some(payload.clone()), dir.path().into()).unwrap();
    assert!(r.act(&r.verify(signed()).unwrap()));
    assert_eq!(std::fs::read_to_string(&out_cfg).unwrap(), MSG);
    assert_eq!(std::fs::read_to_string(&out_payload).unwrap(), MSG);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".revocation-"))
        .collect();
    assert!(leftovers.is_empty(), "the message file is removed");

    // Payload actions refused by allow_payload_revocation_actions = false.
    let strict = RevocationConfig {
        allow_payload_actions: false,
        ..enabled.clone()
    };
    let plan = keylet::revocation::actions::plan(&strict, Some(&payload)).unwrap_err();
    assert!(
        plan.to_string()
            .contains("allow_payload_revocation_actions"),
        "{plan}"
    );
    // A failing action is reported.
    std::fs::write(installed.join("local_action_cfg"), "#!/bin/sh\nexit 3\n").unwrap();
    let r = Revocations::new(enabled, Some(payload), dir.path().into()).unwrap();
    assert!(!r.act(&r.verify(signed()).unwrap()));
}
