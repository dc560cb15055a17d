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

/// Loads `/etc/keylime/agent.conf` holding `text` (no file if it is empty),
/// with the variables `vars`.
fn load_text(text: &str, vars: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
    let env = vars
        .iter()
        .fold(Environment::default(), |e, (k, v)| e.with(k, v));
    let files = [("etc/keylime/agent.conf", text)];
    // an empty text: no file at all
    let files = if text.is_empty() { &files[..0] } else { &files };
    load_from(&env, root_with(files).path())
}

/// Loads with the variables `vars` and no configuration file.
pub(super) fn load_vars(vars: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
    load_text("", vars)
}

/// Loads the `[agent]` lines `agent`, with the variables `vars`.
pub(crate) fn load(agent: &str, vars: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
    load_text(&format!("[agent]\n{agent}\n"), vars)
}

/// Loads the configuration file `text`, with no environment.
pub(super) fn load_conf(text: &str) -> Result<Loaded, ConfigError> {
    load_text(text, &[])
}

/// The options keylet reads (and knows): those read from an empty configuration.
pub(super) fn options_read() -> std::collections::BTreeSet<String> {
    let raw = RawConfig::default();
    let v = value::Values::new(&raw).unwrap();
    AgentConfig::parse(&v).unwrap();
    v.finish().0
}

/// Asserts that the `[agent]` lines `agent` with the variables `vars` fail
/// to load with a message holding each of `needles`.
fn refused_with(agent: &str, vars: &[(&str, &str)], needles: &[&str]) {
    let e = load(agent, vars).unwrap_err().to_string();
    assert!(
        needles.iter().all(|n| e.contains(n)),
        "{agent} {vars:?}: {e}"
    );
}

pub(super) fn refused(agent: &str, needles: &[&str]) {
    refused_with(agent, &[], needles);
}

pub(super) fn refused_vars(vars: &[(&str, &str)], needles: &[&str]) {
    refused_with("", vars, needles);
}

#[test]
fn defaults_match_the_keylime_agent_except_the_uuid() {
    let loaded = load_vars(&[]).unwrap();
    let c = loaded.config;
    assert_eq!(c.uuid, UuidSetting::HashEk);
    let ports = (c.port, c.registrar_port, c.enable_agent_mtls);
    assert_eq!(ports, (9002, 8890, true));
    assert_eq!(c.keylime_dir, PathBuf::from("/var/lib/keylime"));
    let ca = c.keylime_dir.join("cv_ca/cacert.crt");
    assert_eq!(c.trusted_client_ca, [ca]);
    assert_eq!(c.server_cert, c.keylime_dir.join("server-cert.crt"));
    let ima = "/sys/kernel/security/ima/ascii_runtime_measurements";
    assert_eq!(c.ima_ml_path, PathBuf::from(ima));
    let algs = (c.tpm_hash_alg, c.tpm_encryption_alg, c.tpm_signing_alg);
    assert_eq!(algs, (HashAlg::Sha256, KeyAlg::Rsa2048, SignAlg::Rsassa));
    assert_eq!(c.run_as, None, "run_as is unset by default (README)");
    assert_eq!(c.api_versions.len(), 6);
    assert!(!c.api_versions_pinned, "unset api_versions is not pinned");
    let listeners = (&c.identity, c.metrics_listen);
    assert_eq!(listeners, (&IdentitySettings::default(), None), "off");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn later_sources_win_and_keylime_dir_env_beats_the_option() {
    let usr = "[agent]\nport = 1\nip = \"10.0.0.1\"\n";
    let root = root_with(&[
        ("usr/etc/keylime/agent.conf", usr),
        ("etc/keylime/agent.conf", "[agent]\nport = 2\n"),
        ("etc/keylime/agent.conf.d/10-a.conf", "[agent]\nport = 3\n"),
        ("etc/keylime/agent.conf.d/20-b.conf", "[agent]\nport = 4\n"),
    ]);
    let env = Environment::default()
        .with("KEYLIME_AGENT_KEYLIME_DIR", "/srv/a")
        .with("KEYLIME_DIR", "/srv/b");
    let loaded = load_from(&env, root.path()).unwrap();
    assert_eq!(loaded.config.port, 4);
    assert_eq!(loaded.config.ip.to_string(), "10.0.0.1");
    assert_eq!(loaded.config.keylime_dir, PathBuf::from("/srv/b"));
    assert_eq!(loaded.raw.files.len(), 4);

    let env = Environment::default().with("KEYLIME_AGENT_PORT", "5");
    assert_eq!(load_from(&env, root.path()).unwrap().config.port, 5);
}

#[test]
fn keylime_agent_config_replaces_all_files_and_must_exist() {
    let root = root_with(&[
        ("etc/keylime/agent.conf", "[agent]\nport = 2\n"),
        ("mine.conf", "[agent]\ncontact_port = 7\n"),
    ]);
    let mine = root.path().join("mine.conf");
    let env = Environment::default().with("KEYLIME_AGENT_CONFIG", mine.to_str().unwrap());
    let c = load_from(&env, root.path()).unwrap().config;
    assert_eq!((c.port, c.contact_port), (9002, 7));

    let env = Environment::default().with("KEYLIME_AGENT_CONFIG", "/nonexistent/agent.conf");
    let err = load_from(&env, root.path()).unwrap_err();
    let needle = "KEYLIME_AGENT_CONFIG names /nonexistent/agent.conf, which does not exist";
    assert!(err.to_string().contains(needle), "{err}");
}

#[test]
fn a_bad_value_names_option_value_origin_and_form() {
    let needles = [
        "option port = 70000",
        "etc/keylime/agent.conf",
        "1 to 65535",
    ];
    refused("port = 70000", &needles);
    const MTLS: &str = "KEYLIME_AGENT_ENABLE_AGENT_MTLS";
    refused_vars(&[(MTLS, "maybe")], &["enable_agent_mtls", MTLS]);
}

#[test]
fn invalid_toml_names_the_file() {
    let err = load_conf("[agent\nport = 1\n").unwrap_err();
    assert!(err.to_string().contains("is not valid TOML"), "{err}");
}

#[test]
fn algorithms_must_fit_together() {
    const KEY: &str = "KEYLIME_AGENT_TPM_ENCRYPTION_ALG";
    const SIGN: &str = "KEYLIME_AGENT_TPM_SIGNING_ALG";
    refused_vars(&[(KEY, "ecc"), (SIGN, "rsassa")], &["tpm_signing_alg"]);
    refused_vars(&[(SIGN, "rsapss")], &["tpm_signing_alg"]);
    refused_vars(&[(KEY, "rsa4096")], &["tpm_encryption_alg"]);
    // The high-range EKs, by Keylime's names: the signing scheme follows the family.
    for (name, alg, sign) in [
        ("ecc", KeyAlg::EccP256, SignAlg::Ecdsa),
        ("rsa3072", KeyAlg::Rsa3072, SignAlg::Rsassa),
        ("ecc384", KeyAlg::EccP384, SignAlg::Ecdsa),
        ("ECC521", KeyAlg::EccP521, SignAlg::Ecdsa),
    ] {
        let c = load_vars(&[(KEY, name)]).unwrap().config;
        let got = (c.tpm_encryption_alg, c.tpm_signing_alg);
        assert_eq!(got, (alg, sign), "{name}");
    }
}

#[test]
fn unknown_options_and_legacy_sections_warn() {
    let text = "registar_ip = \"1.2.3.4\"\ntls_accept_invalid_certs = true\n\
                [cloud_agent]\nagent_uuid = \"x\"";
    let w = load(text, &[]).unwrap().warnings;
    for wanted in [
        &["did you mean registrar_ip"][..],
        &["tls_accept_invalid_certs", "not implemented"],
        &["[cloud_agent]"],
    ] {
        let found = w.iter().any(|m| wanted.iter().all(|n| m.contains(n)));
        assert!(found, "{wanted:?}: {w:?}");
    }
}

#[test]
fn uuid_ek_handle_password_and_api_versions() {
    let loaded = load_vars(&[
        ("KEYLIME_AGENT_UUID", "generate"),
        ("KEYLIME_AGENT_EK_HANDLE", "0x81010001"),
        ("KEYLIME_AGENT_TPM_OWNERPASSWORD", "hex:0aff"),
        ("KEYLIME_AGENT_API_VERSIONS", "2.5, 3.0, 2.4"),
        ("KEYLIME_AGENT_RUN_AS", ""),
    ])
    .unwrap();
    let c = loaded.config;
    assert_eq!(c.uuid, UuidSetting::Generate);
    assert_eq!(c.ek_handle, Some(0x8101_0001));
    assert_eq!(c.tpm_ownerpassword.as_slice(), &[0x0a, 0xff]);
    assert_eq!(c.api_versions, vec![(2, 4), (2, 5)]);
    assert!(c.api_versions_pinned, "an explicit list is pinned");
    assert_eq!(c.run_as, None);
    assert!(loaded.warnings.iter().any(|w| w.contains("\"3.0\"")));
    refused_vars(&[("KEYLIME_AGENT_EK_HANDLE", "0x40000001")], &["ek_handle"]);
}

#[test]
fn tpm_device_option_wins_over_tcti() {
    let tcti = ("TCTI", "swtpm:host=127.0.0.1,port=2321");
    let device = |vars: &[_]| load_vars(vars).unwrap().config.tpm_device.unwrap();
    assert_eq!(device(&[tcti]), "swtpm:host=127.0.0.1,port=2321");
    let option = ("KEYLIME_AGENT_TPM_DEVICE", "tcp://127.0.0.1:1");
    assert_eq!(device(&[tcti, option]), "tcp://127.0.0.1:1");
}

#[test]
fn uuid_from_the_host_or_the_environment_as_keylime_documents_it() {
    let uuid = |text: &str, vars: &[(&str, &str)]| {
        load(&format!("uuid = \"{text}\""), vars).map(|l| l.config.uuid)
    };
    assert_eq!(uuid("dmidecode", &[]).unwrap(), UuidSetting::Dmidecode);
    assert_eq!(uuid("hostname", &[]).unwrap(), UuidSetting::Hostname);
    // environment: the id is KEYLIME_AGENT_UUID's value, checked like an explicit uuid.
    const ID: &str = "0123abcd-0000-4000-8000-000000000001";
    let got = uuid("environment", &[("KEYLIME_AGENT_UUID", ID)]).unwrap();
    assert_eq!(got, UuidSetting::Explicit(ID.into()));
    refused("uuid = \"environment\"", &["KEYLIME_AGENT_UUID", "not set"]);
    let e = uuid("environment", &[("KEYLIME_AGENT_UUID", "environment")]).unwrap_err();
    let e = e.to_string();
    assert!(e.contains("environment variable KEYLIME_AGENT_UUID"), "{e}");
}

/// The Debian package's `/etc/keylime/agent.conf` (dist/deb/agent.conf) shows every
/// option commented out at its default: loaded as shipped it changes nothing, and
/// with every option uncommented it still changes nothing.
#[test]
fn the_packaged_agent_conf_shows_the_defaults() {
    const SHIPPED: &str = include_str!("../../../dist/deb/agent.conf");
    let defaults = format!("{:?}", load_vars(&[]).unwrap().config);
    let mut named = Vec::new();
    let mut uncommented = String::new();
    for line in SHIPPED.lines() {
        let option = line.strip_prefix('#').filter(|opt| {
            opt.split_once(" = ").is_some_and(|(k, _)| {
                !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            })
        });
        named.extend(
            option
                .and_then(|o| o.split_once(" = "))
                .map(|(k, _)| k.to_owned()),
        );
        uncommented += &format!("{}\n", option.unwrap_or(line));
    }
    for (text, what) in [(SHIPPED, "as shipped"), (&uncommented, "uncommented")] {
        let loaded = load_conf(text).unwrap();
        assert!(loaded.warnings.is_empty(), "{what}: {:?}", loaded.warnings);
        let config = format!("{:?}", loaded.config);
        assert_eq!(
            config, defaults,
            "{what}: an option is not shown at its default"
        );
    }
    // every option keylet reads is there, but the passwords of encrypted keys
    // (keylet writes its keys unencrypted) and the file-format version
    let left_out = ["version", "server_key_password", "payload_key_password"];
    for opt in options_read() {
        assert!(
            left_out.contains(&opt.as_str()) || named.contains(&opt),
            "dist/deb/agent.conf does not show option {opt}"
        );
    }
}

#[test]
fn an_option_of_a_subsystem_this_build_lacks_is_refused_naming_the_feature() {
    for (line, feature) in [
        ("metrics_listen = \"127.0.0.1:9102\"", "metrics"),
        ("identity_listen = \"127.0.0.1:9003\"", "identity"),
        ("identity_socket = \"/run/keylet/id.sock\"", "identity"),
        ("attestation_mode = \"push\"", "push"),
        ("enable_insecure_payload = true", "payload"),
        ("enable_payload_script = true", "payload"),
        ("enable_revocation_actions = true", "payload"),
        ("enable_iak_idevid = true", "iak"),
    ] {
        let option = line.split(' ').next().unwrap();
        let (needed, built) = features::feature(option);
        assert_eq!(needed, feature, "{line}");
        if built {
            load_conf(&format!("[agent]\n{line}\n")).unwrap();
        } else {
            let built_without = format!("built without the {feature} feature");
            refused(line, &[option, &built_without]);
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

#[test]
fn keylimes_list_forms_and_comma_lists_name_the_same_actions() {
    let actions = |value: &str| {
        let text = format!("[agent]\nrevocation_actions = {value}\n");
        load_conf(&text).unwrap().config.revocation.actions
    };
    // Keylime's sample agent.conf writes "[]" for no actions.
    assert!(actions("\"[]\"").is_empty());
    assert!(actions("\"\"").is_empty());
    assert_eq!(actions("\"['a.sh', \\\"b\\\"]\""), ["a.sh", "b"]);
    assert_eq!(actions("\"a.sh, b\""), ["a.sh", "b"]);
}
