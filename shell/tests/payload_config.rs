//! The payload options read from a real agent.conf: Keylime's defaults,
//! values operators write, and clear errors for bad ones.
#![cfg(feature = "payload")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keylet::config::{ConfigError, Environment, Loaded, load_from};

fn load(agent_section: &str) -> Result<Loaded, ConfigError> {
    let root = tempfile::tempdir().unwrap();
    let conf = root.path().join("etc/keylime/agent.conf");
    std::fs::create_dir_all(conf.parent().unwrap()).unwrap();
    std::fs::write(&conf, format!("[agent]\n{agent_section}")).unwrap();
    load_from(&Environment::default(), root.path())
}

#[test]
fn defaults_are_keylimes_and_the_script_is_off() {
    let loaded = load("").unwrap();
    let p = &loaded.config.payload;
    assert_eq!(p.enc_keyname, "derived_tci_key");
    assert_eq!(p.dec_payload_file, "decrypted_payload");
    assert_eq!(p.secure_size.bytes, 1024 * 1024);
    assert!(p.extract_payload_zip);
    assert_eq!(p.payload_script, "autorun.sh");
    assert!(!p.enable_insecure_payload);
    assert!(!p.enable_payload_script);
}

#[test]
fn operator_values_are_read_without_not_implemented_warnings() {
    let loaded = load(
        "secure_size = \"2M\"\nenc_keyname = \"k.bin\"\ndec_payload_file = \"p.bin\"\n\
         extract_payload_zip = false\npayload_script = \"\"\nenable_insecure_payload = true\n\
         enable_payload_script = true\n",
    )
    .unwrap();
    let p = &loaded.config.payload;
    assert_eq!(p.secure_size.bytes, 2 * 1024 * 1024);
    assert_eq!(p.secure_size.text, "2M");
    assert_eq!(
        (p.enc_keyname.as_str(), p.dec_payload_file.as_str()),
        ("k.bin", "p.bin")
    );
    assert!(!p.extract_payload_zip);
    assert_eq!(p.payload_script, "");
    assert!(p.enable_insecure_payload && p.enable_payload_script);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn a_script_set_without_enabling_scripts_draws_a_warning() {
    let loaded = load("payload_script = \"setup.sh\"\n").unwrap();
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.contains("setup.sh") && w.contains("enable_payload_script = true")),
        "{:?}",
        loaded.warnings
    );
    let loaded = load("payload_script = \"setup.sh\"\nenable_payload_script = true\n").unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn bad_values_name_the_option_and_the_accepted_form() {
    for (line, option) in [
        ("secure_size = \"50%\"", "secure_size"),
        ("secure_size = \"1\"", "secure_size"),
        ("secure_size = \"1t\"", "secure_size"),
        ("enc_keyname = \"../k\"", "enc_keyname"),
        ("dec_payload_file = \"\"", "dec_payload_file"),
        ("payload_script = \"/bin/sh\"", "payload_script"),
        ("enable_payload_script = \"maybe\"", "enable_payload_script"),
    ] {
        let err = load(&format!("{line}\n")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(option), "{line}: {text}");
    }
}
