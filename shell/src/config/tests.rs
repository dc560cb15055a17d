use std::fs;

use super::*;

fn root_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    dir
}

/// Loads with `env` and no configuration file.
pub(super) fn load_env(env: &FixedEnv) -> Result<Loaded, ConfigError> {
    load_from(env, root_with(&[]).path())
}

/// Loads `/etc/keylime/agent.conf` holding `text`, with no environment.
pub(super) fn load_conf(text: &str) -> Result<Loaded, ConfigError> {
    load_from(
        &FixedEnv::default(),
        root_with(&[("etc/keylime/agent.conf", text)]).path(),
    )
}

#[test]
fn defaults_match_the_keylime_agent_except_the_uuid() {
    let loaded = load_env(&FixedEnv::default()).unwrap();
    let c = loaded.config;
    assert_eq!(c.uuid, UuidSetting::HashEk);
    assert_eq!(c.port, 9002);
    assert_eq!(c.registrar_port, 8890);
    assert!(c.enable_agent_mtls);
    assert_eq!(c.keylime_dir, PathBuf::from("/var/lib/keylime"));
    assert_eq!(
        c.trusted_client_ca,
        vec![PathBuf::from("/var/lib/keylime/cv_ca/cacert.crt")]
    );
    assert_eq!(
        c.server_cert,
        PathBuf::from("/var/lib/keylime/server-cert.crt")
    );
    assert_eq!(
        c.ima_ml_path,
        PathBuf::from("/sys/kernel/security/ima/ascii_runtime_measurements")
    );
    assert_eq!(c.tpm_hash_alg, HashAlg::Sha256);
    assert_eq!(c.tpm_encryption_alg, KeyAlg::Rsa2048);
    assert_eq!(c.tpm_signing_alg, SignAlg::Rsassa);
    assert_eq!(c.run_as, None, "run_as is unset by default (README)");
    assert_eq!(c.api_versions.len(), 6);
    assert!(!c.api_versions_pinned, "unset api_versions is not pinned");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn later_sources_win_and_keylime_dir_env_beats_the_option() {
    let root = root_with(&[
        (
            "usr/etc/keylime/agent.conf",
            "[agent]\nport = 1\nip = \"10.0.0.1\"\n",
        ),
        ("etc/keylime/agent.conf", "[agent]\nport = 2\n"),
        ("etc/keylime/agent.conf.d/10-a.conf", "[agent]\nport = 3\n"),
        ("etc/keylime/agent.conf.d/20-b.conf", "[agent]\nport = 4\n"),
    ]);
    let env = FixedEnv::default()
        .with("KEYLIME_AGENT_KEYLIME_DIR", "/srv/a")
        .with("KEYLIME_DIR", "/srv/b");
    let loaded = load_from(&env, root.path()).unwrap();
    assert_eq!(loaded.config.port, 4);
    assert_eq!(loaded.config.ip.to_string(), "10.0.0.1");
    assert_eq!(loaded.config.keylime_dir, PathBuf::from("/srv/b"));
    assert_eq!(loaded.raw.files.len(), 4);

    let env = FixedEnv::default().with("KEYLIME_AGENT_PORT", "5");
    assert_eq!(load_from(&env, root.path()).unwrap().config.port, 5);
}

#[test]
fn keylime_agent_config_replaces_all_files_and_must_exist() {
    let root = root_with(&[
        ("etc/keylime/agent.conf", "[agent]\nport = 2\n"),
        ("mine.conf", "[agent]\ncontact_port = 7\n"),
    ]);
    let mine = root.path().join("mine.conf");
    let env = FixedEnv::default().with("KEYLIME_AGENT_CONFIG", mine.to_str().unwrap());
    let c = load_from(&env, root.path()).unwrap().config;
    assert_eq!((c.port, c.contact_port), (9002, 7));

    let env = FixedEnv::default().with("KEYLIME_AGENT_CONFIG", "/nonexistent/agent.conf");
    let err = load_from(&env, root.path()).unwrap_err();
    assert!(matches!(err, ConfigError::MissingFile { .. }));
    assert!(err.to_string().contains("/nonexistent/agent.conf"));
}

#[test]
fn a_bad_value_names_option_value_origin_and_form() {
    let err = load_conf("[agent]\nport = 70000\n").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("option port = 70000"), "{msg}");
    assert!(msg.contains("etc/keylime/agent.conf"), "{msg}");
    assert!(msg.contains("1 to 65535"), "{msg}");

    let env = FixedEnv::default().with("KEYLIME_AGENT_ENABLE_AGENT_MTLS", "maybe");
    let msg = load_env(&env).unwrap_err().to_string();
    assert!(msg.contains("enable_agent_mtls"), "{msg}");
    assert!(msg.contains("KEYLIME_AGENT_ENABLE_AGENT_MTLS"), "{msg}");
}

#[test]
fn invalid_toml_names_the_file() {
    let err = load_conf("[agent\nport = 1\n").unwrap_err();
    assert!(matches!(err, ConfigError::Toml { .. }), "{err}");
}

#[test]
fn algorithms_must_fit_together() {
    let env = FixedEnv::default()
        .with("KEYLIME_AGENT_TPM_ENCRYPTION_ALG", "ecc")
        .with("KEYLIME_AGENT_TPM_SIGNING_ALG", "rsassa");
    let msg = load_env(&env).unwrap_err().to_string();
    assert!(msg.contains("tpm_signing_alg"), "{msg}");

    let env = FixedEnv::default().with("KEYLIME_AGENT_TPM_ENCRYPTION_ALG", "ecc");
    let c = load_env(&env).unwrap().config;
    assert_eq!(
        (c.tpm_encryption_alg, c.tpm_signing_alg),
        (KeyAlg::EccP256, SignAlg::Ecdsa)
    );

    let env = FixedEnv::default().with("KEYLIME_AGENT_TPM_SIGNING_ALG", "rsapss");
    assert!(load_env(&env).is_err());

    // The high-range EKs, by Keylime's names: the signing scheme follows the family.
    for (name, alg, sign) in [
        ("rsa3072", KeyAlg::Rsa3072, SignAlg::Rsassa),
        ("ecc384", KeyAlg::EccP384, SignAlg::Ecdsa),
        ("ECC521", KeyAlg::EccP521, SignAlg::Ecdsa),
    ] {
        let env = FixedEnv::default().with("KEYLIME_AGENT_TPM_ENCRYPTION_ALG", name);
        let c = load_env(&env).unwrap().config;
        assert_eq!(
            (c.tpm_encryption_alg, c.tpm_signing_alg),
            (alg, sign),
            "{name}"
        );
    }
    let env = FixedEnv::default().with("KEYLIME_AGENT_TPM_ENCRYPTION_ALG", "rsa4096");
    let msg = load_env(&env).unwrap_err().to_string();
    assert!(msg.contains("tpm_encryption_alg"), "{msg}");
}

#[test]
fn unknown_options_and_legacy_sections_warn() {
    let w = load_conf(
        "[agent]\nregistar_ip = \"1.2.3.4\"\ntls_accept_invalid_certs = true\n[cloud_agent]\nagent_uuid = \"x\"\n",
    )
    .unwrap()
    .warnings;
    assert!(
        w.iter().any(|m| m.contains("did you mean registrar_ip")),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|m| m.contains("tls_accept_invalid_certs") && m.contains("not implemented")),
        "{w:?}"
    );
    assert!(w.iter().any(|m| m.contains("[cloud_agent]")), "{w:?}");
}

#[test]
fn uuid_ek_handle_password_and_api_versions() {
    let env = FixedEnv::default()
        .with("KEYLIME_AGENT_UUID", "generate")
        .with("KEYLIME_AGENT_EK_HANDLE", "0x81010001")
        .with("KEYLIME_AGENT_TPM_OWNERPASSWORD", "hex:0aff")
        .with("KEYLIME_AGENT_API_VERSIONS", "2.5, 3.0, 2.4")
        .with("KEYLIME_AGENT_RUN_AS", "");
    let loaded = load_env(&env).unwrap();
    let c = loaded.config;
    assert_eq!(c.uuid, UuidSetting::Generate);
    assert_eq!(c.ek_handle, Some(0x8101_0001));
    assert_eq!(c.tpm_ownerpassword.as_slice(), &[0x0a, 0xff]);
    assert_eq!(c.api_versions, vec![(2, 4), (2, 5)]);
    assert!(c.api_versions_pinned, "an explicit list is pinned");
    assert_eq!(c.run_as, None);
    assert!(loaded.warnings.iter().any(|w| w.contains("\"3.0\"")));

    let env = FixedEnv::default().with("KEYLIME_AGENT_EK_HANDLE", "0x40000001");
    assert!(load_env(&env).is_err());
}

#[test]
fn tpm_device_option_wins_over_tcti() {
    let env = FixedEnv::default().with("TCTI", "swtpm:host=127.0.0.1,port=2321");
    let c = load_env(&env).unwrap().config;
    assert_eq!(c.tpm_device.unwrap().0, "swtpm:host=127.0.0.1,port=2321");
    let env = env.with("KEYLIME_AGENT_TPM_DEVICE", "tcp://127.0.0.1:1");
    let c = load_env(&env).unwrap().config;
    assert_eq!(c.tpm_device.unwrap().0, "tcp://127.0.0.1:1");
}

#[test]
fn uuid_from_the_host_or_the_environment_as_keylime_documents_it() {
    let conf = |uuid: &str| format!("[agent]\nuuid = \"{uuid}\"\n");
    let load = |env: &FixedEnv, text: &str| {
        let root = root_with(&[("etc/keylime/agent.conf", text)]);
        load_from(env, root.path()).map(|l| l.config.uuid)
    };
    let none = FixedEnv::default();
    assert_eq!(
        load(&none, &conf("dmidecode")).unwrap(),
        UuidSetting::Dmidecode
    );
    assert_eq!(
        load(&none, &conf("hostname")).unwrap(),
        UuidSetting::Hostname
    );
    // environment: the id is KEYLIME_AGENT_UUID's value, checked like an explicit uuid.
    let env =
        FixedEnv::default().with("KEYLIME_AGENT_UUID", "0123abcd-0000-4000-8000-000000000001");
    assert_eq!(
        load(&env, &conf("environment")).unwrap(),
        UuidSetting::Explicit("0123abcd-0000-4000-8000-000000000001".into())
    );
    let e = load(&none, &conf("environment")).unwrap_err().to_string();
    assert!(
        e.contains("KEYLIME_AGENT_UUID") && e.contains("not set"),
        "{e}"
    );
    let env = FixedEnv::default().with("KEYLIME_AGENT_UUID", "environment");
    let e = load(&env, &conf("environment")).unwrap_err().to_string();
    assert!(e.contains("environment variable KEYLIME_AGENT_UUID"), "{e}");
}

/// The Debian package's `/etc/keylime/agent.conf` (dist/deb/agent.conf) shows every
/// option commented out at its default: loaded as shipped it changes nothing, and
/// with every option uncommented it still changes nothing.
#[test]
fn the_packaged_agent_conf_shows_the_defaults() {
    const SHIPPED: &str = include_str!("../../../dist/deb/agent.conf");
    let defaults = load_env(&FixedEnv::default()).unwrap();
    let loaded = load_conf(SHIPPED).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(
        format!("{:?}", loaded.config),
        format!("{:?}", defaults.config)
    );

    let mut named = Vec::new();
    let uncommented: String = SHIPPED
        .lines()
        .map(|l| match l.strip_prefix('#') {
            Some(opt)
                if opt.split_once(" = ").is_some_and(|(k, _)| {
                    !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                }) =>
            {
                named.push(opt.split_once(" = ").unwrap().0.to_owned());
                format!("{opt}\n")
            }
            _ => format!("{l}\n"),
        })
        .collect();
    let root = root_with(&[("etc/keylime/agent.conf", &uncommented)]);
    let loaded = load_from(&FixedEnv::default(), root.path()).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(
        format!("{:?}", loaded.config).replace(&root.path().display().to_string(), ""),
        format!("{:?}", defaults.config),
        "an option in dist/deb/agent.conf is not shown at its default"
    );
    // every option keylet reads is there, but the passwords of encrypted keys
    // (keylet writes its keys unencrypted) and the file-format version
    let left_out = ["version", "server_key_password", "payload_key_password"];
    for opt in options::IMPLEMENTED {
        assert!(
            left_out.contains(opt) || named.iter().any(|n| n == opt),
            "dist/deb/agent.conf does not show option {opt}"
        );
    }
}

#[test]
fn an_option_of_a_subsystem_this_build_lacks_is_refused_naming_the_feature() {
    let cases = [
        (
            "metrics_listen = \"127.0.0.1:9102\"",
            "metrics",
            cfg!(feature = "metrics"),
        ),
        (
            "identity_listen = \"127.0.0.1:9003\"",
            "identity",
            cfg!(feature = "identity"),
        ),
        (
            "identity_socket = \"/run/keylet/id.sock\"",
            "identity",
            cfg!(feature = "identity"),
        ),
        (
            "attestation_mode = \"push\"",
            "push",
            cfg!(feature = "push"),
        ),
        (
            "enable_insecure_payload = true",
            "payload",
            cfg!(feature = "payload"),
        ),
        (
            "enable_payload_script = true",
            "payload",
            cfg!(feature = "payload"),
        ),
        (
            "enable_revocation_actions = true",
            "payload",
            cfg!(feature = "payload"),
        ),
        ("enable_iak_idevid = true", "iak", cfg!(feature = "iak")),
    ];
    for (line, feature, built) in cases {
        let text = format!("[agent]\n{line}\n");
        match load_conf(&text) {
            Ok(_) => assert!(built, "{line}: accepted without the {feature} feature"),
            Err(e) => {
                assert!(!built, "{line}: refused with the {feature} feature: {e}");
                let text = e.to_string();
                let option = line.split(' ').next().unwrap();
                assert!(text.contains(option), "{text}");
                assert!(
                    text.contains(&format!("built without the {feature} feature")),
                    "{text}"
                );
            }
        }
    }
}

#[test]
fn keylimes_stock_payload_options_load_in_every_build() {
    // Tuning options of the payload subsystem keep their defaults and load
    // even without the payload feature (only options asking for it fail).
    let text = "[agent]\nextract_payload_zip = true\npayload_script = \"autorun.sh\"\n\
                secure_size = \"1m\"\nenable_insecure_payload = false\n\
                enable_revocation_actions = false\nrevocation_actions = \"\"\n";
    load_conf(text).unwrap();
}
