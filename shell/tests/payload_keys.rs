//! Payload keys and delivery against vectors made by Keylime 7.14.3's own
//! Python code: OAEP unwrap, U xor V, the auth tag, the /keys/verify HMAC,
//! AES-GCM payloads, and delivery into real directories.
#![cfg(feature = "payload")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod payload_support;

use std::os::unix::fs::PermissionsExt;

use keylet::config::PayloadConfig;
use keylet::payload::{PayloadError, SymmetricKey, cipher, deliver};
use payload_support::{
    Vectors, bootstrap, data_dir, defaults, encrypt_like_keylime, nk, python_zip,
};
use zeroize::Zeroizing;

fn key(bytes: &[u8]) -> SymmetricKey {
    SymmetricKey::new(Zeroizing::new(bytes.to_vec())).unwrap()
}

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn shares_wrapped_by_keylime_unwrap_xor_and_match_the_auth_tag() {
    let dir = tempfile::tempdir().unwrap();
    let nk = nk(dir.path());
    let vectors = Vectors::load();
    for c in &vectors.cases {
        let u = SymmetricKey::unwrap(nk.private(), &c.encrypted_u).unwrap();
        let v = SymmetricKey::unwrap(nk.private(), &c.encrypted_v).unwrap();
        assert_eq!(u.as_bytes(), c.u.as_slice(), "{}: U", c.name);
        assert_eq!(v.as_bytes(), c.v.as_slice(), "{}: V", c.name);
        let k = u.xor(&v).unwrap();
        assert_eq!(k.as_bytes(), c.k.as_slice(), "{}: K", c.name);
        assert!(k.matches_tag(&vectors.agent_id, &c.tag()), "{}", c.name);
        assert!(!k.matches_tag("another-agent", &c.tag()), "{}", c.name);
        assert!(!u.matches_tag(&vectors.agent_id, &c.tag()), "{}", c.name);
    }
}

#[test]
fn a_share_for_another_key_or_of_a_bad_length_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let nk = nk(dir.path());
    let c = Vectors::load().case("file").clone();
    let mut tampered = c.encrypted_u.clone();
    tampered[10] ^= 1;
    let err = SymmetricKey::unwrap(nk.private(), &tampered).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("Failed to decrypt encrypted_key"),
        "{err}"
    );
    assert!(matches!(
        SymmetricKey::new(Zeroizing::new(vec![0; 24])),
        Err(PayloadError::KeyLength(24))
    ));
    // AES-128 and AES-256 shares never combine.
    let short = key(&[1; 16]);
    assert!(key(&c.u).xor(&short).is_none());
}

#[test]
fn payloads_encrypted_by_keylime_decrypt_and_tampering_is_caught() {
    for c in &Vectors::load().cases {
        let plain = cipher::decrypt(&key(&c.k), &c.payload()).unwrap();
        assert_eq!(plain.as_slice(), c.plaintext.as_slice(), "{}", c.name);
        let mut bad = c.payload();
        let last = bad.len() - 1;
        bad[last] ^= 0x80;
        assert!(matches!(
            cipher::decrypt(&key(&c.k), &bad),
            Err(PayloadError::Decrypt)
        ));
    }
}

#[test]
fn k_is_derived_in_either_order_and_proves_itself_with_keylimes_hmac() {
    let vectors = Vectors::load();
    let c = vectors.case("file");
    for u_first in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let b = bootstrap(dir.path(), defaults().payload, true);
        let send_u = || b.add_u(&c.encrypted_u, c.tag(), None).unwrap();
        let send_v = || b.add_v(&c.encrypted_v).unwrap();
        if u_first {
            send_u();
            assert!(b.verify(&vectors.challenge).is_none());
            send_v();
        } else {
            send_v();
            send_v(); // the verifier re-sends V; repeats are fine
            assert!(b.verify(&vectors.challenge).is_none());
            send_u();
        }
        let tag = b.verify(&vectors.challenge).unwrap();
        assert_eq!(tag.as_str(), c.verify_hmac);
        let delivered = b.wait_for_delivery().unwrap().unwrap();
        let k_file = delivered.dir.join("derived_tci_key");
        assert_eq!(std::fs::read(&k_file).unwrap(), c.k);
        assert_eq!(mode(&k_file), 0o600);
    }
}

#[test]
fn shares_of_different_adds_do_not_combine() {
    let vectors = Vectors::load();
    let (a, b2) = (vectors.case("file"), vectors.case("zip"));
    let dir = tempfile::tempdir().unwrap();
    let b = bootstrap(dir.path(), defaults().payload, true);
    b.add_u(&a.encrypted_u, a.tag(), None).unwrap();
    b.add_v(&b2.encrypted_v).unwrap();
    assert!(b.verify(&vectors.challenge).is_none());
    assert!(b.wait_for_delivery().is_none());
    // The matching V arrives later: the held U is used.
    b.add_v(&a.encrypted_v).unwrap();
    assert_eq!(
        b.verify(&vectors.challenge).unwrap().as_str(),
        a.verify_hmac
    );
}

#[test]
fn a_file_payload_is_decrypted_into_the_secure_directory() {
    let vectors = Vectors::load();
    let c = vectors.case("file");
    let dir = tempfile::tempdir().unwrap();
    let b = bootstrap(dir.path(), defaults().payload, true);
    b.add_u(&c.encrypted_u, c.tag(), Some(c.payload())).unwrap();
    b.add_v(&c.encrypted_v).unwrap();
    let d = b.wait_for_delivery().unwrap().unwrap();
    assert_eq!(d.dir, dir.path().join("secure/unzipped"));
    assert_eq!(mode(&d.dir), 0o700);
    let file = d.dir.join("decrypted_payload");
    assert_eq!(std::fs::read(&file).unwrap(), c.plaintext);
    assert_eq!(mode(&file), 0o600);
    assert_eq!(d.script_exit, None);
}

#[test]
fn the_tenants_zip_is_unpacked_and_its_script_runs_only_when_enabled() {
    let vectors = Vectors::load();
    let c = vectors.case("zip");
    for enabled in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let config = PayloadConfig {
            enable_payload_script: enabled,
            ..defaults().payload
        };
        let b = bootstrap(dir.path(), config, true);
        b.add_u(&c.encrypted_u, c.tag(), Some(c.payload())).unwrap();
        b.add_v(&c.encrypted_v).unwrap();
        let d = b.wait_for_delivery().unwrap().unwrap();
        assert_eq!(
            std::fs::read_to_string(d.dir.join("hello.txt")).unwrap(),
            "hello from the tenant\n"
        );
        assert!(d.dir.join("RevocationNotifier-cert.crt").is_file());
        assert_eq!(
            std::fs::read(d.dir.join("decrypted_payload")).unwrap(),
            std::fs::read(data_dir().join("cert_package.zip")).unwrap()
        );
        let output = d.dir.join("autorun-output");
        if enabled {
            assert_eq!(d.script_exit, Some(0));
            assert_eq!(std::fs::read_to_string(output).unwrap(), "ran\n");
        } else {
            assert_eq!(d.script_exit, None);
            assert!(!output.exists(), "the script ran although disabled");
        }
    }
}

#[test]
fn a_new_delivery_replaces_the_old_one_and_a_bad_one_keeps_it() {
    let vectors = Vectors::load();
    let (zip, file) = (vectors.case("zip"), vectors.case("file"));
    let dir = tempfile::tempdir().unwrap();
    let secure = dir.path().join("secure");
    std::fs::create_dir(&secure).unwrap();
    let config = defaults().payload;
    deliver::deliver(&secure, &config, &key(&zip.k), Some(&zip.payload())).unwrap();
    assert!(secure.join("unzipped/hello.txt").is_file());
    deliver::deliver(&secure, &config, &key(&file.k), Some(&file.payload())).unwrap();
    assert!(!secure.join("unzipped/hello.txt").exists());
    // Wrong key: nothing is touched.
    let err = deliver::deliver(&secure, &config, &key(&zip.k), Some(&file.payload()));
    assert!(matches!(err, Err(PayloadError::Decrypt)));
    assert_eq!(
        std::fs::read(secure.join("unzipped/decrypted_payload")).unwrap(),
        file.plaintext
    );
}

#[test]
fn payloads_are_refused_when_not_accepted_or_too_large() {
    let vectors = Vectors::load();
    let c = vectors.case("file");
    let dir = tempfile::tempdir().unwrap();
    let b = bootstrap(dir.path(), defaults().payload, false);
    let err = b
        .add_u(&c.encrypted_u, c.tag(), Some(c.payload()))
        .unwrap_err();
    assert!(err.to_string().contains("enable_insecure_payload"), "{err}");
    // Without a payload the key exchange still works (for /keys/verify).
    b.add_u(&c.encrypted_u, c.tag(), None).unwrap();
    b.add_v(&c.encrypted_v).unwrap();
    assert!(b.verify(&vectors.challenge).is_some());
    assert!(b.wait_for_delivery().is_none(), "nothing is written");

    let small = PayloadConfig {
        secure_size: keylet::config::SecureSize {
            text: "4k".into(),
            bytes: 4096,
        },
        ..defaults().payload
    };
    let b = bootstrap(dir.path(), small, true);
    let err = b
        .add_u(&c.encrypted_u, c.tag(), Some(vec![0; 5000]))
        .unwrap_err();
    assert!(matches!(err, PayloadError::PayloadTooLarge { .. }), "{err}");
    assert!(err.to_string().contains("secure_size"), "{err}");
}

#[test]
fn a_delivery_that_fails_while_unpacking_leaves_the_previous_one_whole() {
    let dir = tempfile::tempdir().unwrap();
    let secure = dir.path().join("secure");
    std::fs::create_dir(&secure).unwrap();
    let k = key(&[9; 32]);
    let config = defaults().payload;
    let first = encrypt_like_keylime(&k, b"the first payload");
    deliver::deliver(&secure, &config, &k, Some(&first)).unwrap();
    // A bzip2 zip is decrypted and written, then refused while unpacking.
    let bad = encrypt_like_keylime(&k, &python_zip("bz2", &[("inner.txt", 100)]));
    deliver::deliver(&secure, &config, &k, Some(&bad)).unwrap_err();
    assert_eq!(
        std::fs::read(secure.join("unzipped/decrypted_payload")).unwrap(),
        b"the first payload"
    );
    let names = |d: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(names(&secure), ["unzipped"], "no staging directory is left");
    // One a killed keylet left (a pid beyond pid_max) is removed when the
    // secure directory is prepared.
    let left = secure.join(".unzipped.tmp-2147483646");
    std::fs::create_dir(&left).unwrap();
    std::fs::write(left.join("decrypted_payload"), b"half").unwrap();
    keylet::store::remove_stale_temporaries(&[&secure.join("unzipped")]);
    assert_eq!(names(&secure), ["unzipped"]);
}
