use std::fs;
use std::net::SocketAddr;

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

fn environment(vars: &[(&str, &str)]) -> Environment {
    Environment(
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// Loads `/etc/keylime/agent.conf` holding `text` (no file if it is empty),
/// with the variables `vars`.
fn load_conf(text: &str, vars: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
    let env = environment(vars);
    let files = [("etc/keylime/agent.conf", text)];
    // an empty text: no file at all
    let files = if text.is_empty() { &files[..0] } else { &files };
    load_from(&env, root_with(files).path())
}

pub(super) fn load_vars(vars: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
    load_conf("", vars)
}

/// Loads the `[agent]` lines `agent`, with the variables `vars`.
pub(crate) fn load(agent: &str, vars: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
    load_conf(&format!("[agent]\n{agent}\n"), vars)
}

/// The options keylet reads (and knows): those read from an empty configuration.
pub(super) fn options_read() -> std::collections::BTreeSet<String> {
    let raw = RawConfig::default();
    let v = value::Values::new(&raw).unwrap();
    AgentConfig::parse(&v).unwrap();
    v.finish().0
}

/// Asserts that the `[agent]` lines `agent` (or, `refused_vars`, the
/// variables `vars`) fail to load with a message holding each of `needles`.
pub(super) fn refused(agent: &str, needles: &[&str]) {
    let e = load(agent, &[]).unwrap_err().to_string();
    assert!(needles.iter().all(|n| e.contains(n)), "{agent}: {e}");
}

pub(super) fn refused_vars(vars: &[(&str, &str)], needles: &[&str]) {
    let e = load_vars(vars).unwrap_err().to_string();
    assert!(needles.iter().all(|n| e.contains(n)), "{vars:?}: {e}");
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
fn later_sources_win_keylime_dir_beats_the_option_tpm_device_beats_tcti() {
    let usr = "[agent]\nport = 1\nip = \"10.0.0.1\"\n";
    let root = root_with(&[
        ("usr/etc/keylime/agent.conf", usr),
        ("etc/keylime/agent.conf", "[agent]\nport = 2\n"),
        ("etc/keylime/agent.conf.d/10-a.conf", "[agent]\nport = 3\n"),
        ("etc/keylime/agent.conf.d/20-b.conf", "[agent]\nport = 4\n"),
    ]);
    let env = environment(&[
        ("KEYLIME_AGENT_KEYLIME_DIR", "/srv/a"),
        ("KEYLIME_DIR", "/srv/b"),
    ]);
    let loaded = load_from(&env, root.path()).unwrap();
    assert_eq!(loaded.config.port, 4);
    assert_eq!(loaded.config.ip.to_string(), "10.0.0.1");
    assert_eq!(loaded.config.keylime_dir, PathBuf::from("/srv/b"));
    assert_eq!(loaded.raw.files.len(), 4);

    let env = environment(&[("KEYLIME_AGENT_PORT", "5")]);
    assert_eq!(load_from(&env, root.path()).unwrap().config.port, 5);
    let tcti = ("TCTI", "swtpm:host=127.0.0.1,port=2321");
    let device = |vars: &[_]| load_vars(vars).unwrap().config.tpm_device.unwrap();
    assert_eq!(device(&[tcti]), "swtpm:host=127.0.0.1,port=2321");
    let option = ("KEYLIME_AGENT_TPM_DEVICE", "tcp://127.0.0.1:1");
    assert_eq!(device(&[tcti, option]), "tcp://127.0.0.1:1");
}

#[test]
fn keylime_agent_config_replaces_all_files_and_must_exist() {
    let root = root_with(&[
        ("etc/keylime/agent.conf", "[agent]\nport = 2\n"),
        ("mine.conf", "[agent]\ncontact_port = 7\n"),
    ]);
    let mine = root.path().join("mine.conf");
    let env = environment(&[("KEYLIME_AGENT_CONFIG", mine.to_str().unwrap())]);
    let c = load_from(&env, root.path()).unwrap().config;
    assert_eq!((c.port, c.contact_port), (9002, 7));

    let env = environment(&[("KEYLIME_AGENT_CONFIG", "/nonexistent/agent.conf")]);
    let err = load_from(&env, root.path()).unwrap_err();
    let needle = "KEYLIME_AGENT_CONFIG names /nonexistent/agent.conf, which does not exist";
    assert!(err.to_string().contains(needle), "{err}");
}

#[test]
fn errors_name_the_option_value_origin_and_form_or_the_file() {
    const FILE: &str = "etc/keylime/agent.conf";
    refused("port = 70000", &["option port = 70000", FILE, "1 to 65535"]);
    const MTLS: &str = "KEYLIME_AGENT_ENABLE_AGENT_MTLS";
    refused_vars(&[(MTLS, "maybe")], &["enable_agent_mtls", MTLS]);
    let err = load_conf("[agent\nport = 1\n", &[]).unwrap_err();
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
fn uuid_ek_handle_password_and_api_versions_as_keylime_documents_them() {
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
        named.extend(option.and_then(|o| Some(o.split_once(" = ")?.0.to_owned())));
        uncommented += &format!("{}\n", option.unwrap_or(line));
    }
    for (text, what) in [(SHIPPED, "as shipped"), (&uncommented, "uncommented")] {
        let loaded = load_conf(text, &[]).unwrap();
        assert!(loaded.warnings.is_empty(), "{what}: {:?}", loaded.warnings);
        let config = format!("{:?}", loaded.config);
        assert_eq!(config, defaults, "{what}: an option not at its default");
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
            load(line, &[]).unwrap();
        } else {
            let built_without = format!("built without the {feature} feature");
            refused(line, &[option, &built_without]);
        }
    }
}

#[test]
fn keylimes_stock_payload_options_load_and_its_action_lists_are_read() {
    let actions = |value: &str| {
        let text = format!("revocation_actions = {value}");
        load(&text, &[]).unwrap().config.revocation.actions
    };
    // Keylime's sample agent.conf writes "[]" for no actions.
    assert!(actions("\"[]\"").is_empty());
    assert!(actions("\"\"").is_empty());
    assert_eq!(actions("\"['a.sh', \\\"b\\\"]\""), ["a.sh", "b"]);
    assert_eq!(actions("\"a.sh, b\""), ["a.sh", "b"]);
    // Tuning options of the payload subsystem keep their defaults and load
    // even without the payload feature (only options asking for it fail).
    let text = "extract_payload_zip = true\npayload_script = \"autorun.sh\"\n\
                secure_size = \"1m\"\nenable_insecure_payload = false\n\
                enable_revocation_actions = false\nrevocation_actions = \"\"\n";
    load(text, &[]).unwrap();
}

fn identity(agent: &str) -> IdentitySettings {
    load(agent, &[]).unwrap().config.identity
}

#[test]
#[cfg(feature = "identity")] // the option is refused without it
fn loopback_listen_socket_and_allow_lists() {
    let s = identity(
        "identity_listen = \"127.0.0.1:9003\"\nidentity_socket = \"/run/k/identity.sock\"\n\
         identity_allow_uids = \"1000, root, 1000\"\nidentity_allow_gids = 0",
    );
    assert_eq!(s.listen, Some("127.0.0.1:9003".parse().unwrap()));
    assert_eq!(s.socket, Some("/run/k/identity.sock".into()));
    assert_eq!((s.allow_uids, s.allow_gids), (vec![1000, 0], vec![0]));
    let s = identity("identity_listen = \"[::1]:9003\"");
    assert_eq!(s.listen, Some("[::1]:9003".parse().unwrap()));
}

#[test]
fn non_loopback_listen_unknown_names_and_relative_sockets_are_refused() {
    for addr in ["0.0.0.0:9003", "192.0.2.1:9003", "[::]:9003"] {
        let line = format!("identity_listen = \"{addr}\"");
        refused(&line, &["identity_listen", "loopback"]);
    }
    refused("identity_listen = \"localhost\"", &["identity_listen"]);
    let needles = ["identity_allow_uids", "no-such-user-keylet"];
    refused("identity_allow_uids = \"no-such-user-keylet\"", &needles);
    refused("identity_socket = \"identity.sock\"", &["identity_socket"]);
}

const LISTEN: &str = "KEYLIME_AGENT_METRICS_LISTEN";
const REMOTE: &str = "KEYLIME_AGENT_METRICS_ALLOW_REMOTE";

fn metrics_listen(vars: &[(&str, &str)]) -> Option<SocketAddr> {
    load_vars(vars).unwrap().config.metrics_listen
}

#[test]
#[cfg(feature = "metrics")] // the option is refused without it
fn loopback_addresses_or_a_remote_one_with_the_explicit_opt_in() {
    const ANY: &str = "0.0.0.0:9102";
    for (vars, addr) in [
        (&[(LISTEN, "127.0.0.1:9102")][..], "127.0.0.1:9102"),
        (&[(LISTEN, "[::1]:9102")], "[::1]:9102"),
        (&[(LISTEN, "localhost:9102")], "127.0.0.1:9102"),
        (&[(LISTEN, ANY), (REMOTE, "true")], ANY),
    ] {
        let got = metrics_listen(vars);
        assert_eq!(got, Some(addr.parse().unwrap()), "{vars:?}");
    }
    let needles = ["metrics_listen", "metrics_allow_remote = true"];
    refused_vars(&[(LISTEN, ANY)], &needles);
    let opted_out = [(LISTEN, "192.0.2.7:9102"), (REMOTE, "false")];
    refused_vars(&opted_out, &["loopback"]);
}

#[test]
fn empty_is_off_and_malformed_addresses_name_the_option_and_the_form() {
    assert_eq!(metrics_listen(&[(LISTEN, "")]), None);
    for bad in ["9102", "127.0.0.1", "localhost:http", "host.example:9102"] {
        refused_vars(&[(LISTEN, bad)], &["metrics_listen", "IP:PORT"]);
    }
}

fn push_settings(agent: &str, vars: &[(&str, &str)]) -> PushSettings {
    load(agent, vars).unwrap().config.push
}

#[test]
fn urls_accepted_and_refused_and_pull_with_keylimes_defaults() {
    // host, port and prefix
    for (url, parts) in [
        ("https://verifier.example:8881", "verifier.example 8881 "),
        ("https://[::1]:18983/keylime/", "::1 18983 /keylime"),
        ("https://10.0.0.1", "10.0.0.1 443 "),
    ] {
        let u = parse_verifier_url(url).unwrap();
        assert_eq!(format!("{} {} {}", u.host, u.port, u.prefix), parts);
    }
    let u = parse_verifier_url("https://[::1]:18983/keylime/").unwrap();
    assert_eq!(u.to_string(), "https://[::1]:18983/keylime");
    for bad in [
        "http://verifier:8881",
        "verifier:8881",
        "https://",
        "https://:8881",
        "https://v:0",
        "https://v:99999",
        "https://user@v:8881",
        "https://v:8881/?x=1",
        "https://[zz]:1",
        "https://v v:1",
        "https://[::1]junk",
        "https://[::1]junk:1",
        "https://a:b:1",
    ] {
        assert!(parse_verifier_url(bad).is_none(), "{bad}");
    }
    // Keylime 7.14's agent.conf template renders these as "" for a pull agent.
    let empty = "verifier_url = \"\"\ncertification_keys_server_identifier = \"\"\n\
                 uefi_logs_evidence_version = \"\"";
    for p in [push_settings("", &[]), push_settings(empty, &[])] {
        assert_eq!(p.mode, AttestationMode::Pull);
        assert_eq!(p.verifier_url.to_string(), "https://localhost:8881");
        let ca = PathBuf::from("/var/lib/keylime/cv_ca/cacert.crt");
        assert_eq!(p.verifier_tls_ca_cert, ca);
        assert_eq!(p.attestation_interval, Duration::from_secs(60));
        assert_eq!(p.server_identifier, "ak");
        assert_eq!(p.uefi_logs_evidence_version, "2.1");
    }
}

#[test]
#[cfg(feature = "push")] // the option is refused without it
fn environment_selects_push_and_bad_values_name_the_option() {
    const MODE: &str = "KEYLIME_AGENT_ATTESTATION_MODE";
    const URL: &str = "KEYLIME_AGENT_VERIFIER_URL";
    const INTERVAL: &str = "KEYLIME_AGENT_ATTESTATION_INTERVAL_SECONDS";
    let url = (URL, "https://127.0.0.1:18983");
    let p = push_settings("", &[(MODE, "push"), url, (INTERVAL, "5")]);
    assert_eq!(p.mode, AttestationMode::Push);
    assert_eq!(p.verifier_url.port, 18983);
    assert_eq!(p.attestation_interval, Duration::from_secs(5));
    refused_vars(&[(MODE, "both")], &["attestation_mode", "push"]);
    refused_vars(&[(URL, "http://v:1")], &["verifier_url", "https only"]);
    refused_vars(&[(INTERVAL, "0")], &["attestation_interval_seconds"]);
}
