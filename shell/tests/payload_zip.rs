//! Zip payloads: stored and deflated entries are unpacked; other methods, zip
//! bombs and lying headers are refused before anything lands in `unzipped/`,
//! and the previous delivery stays whole.
#![cfg(feature = "payload")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod payload_support;

use std::path::Path;

use keylet::config::{PayloadConfig, SecureSize};
use keylet::payload::{PayloadError, SymmetricKey, deliver};
use payload_support::{declare_size, defaults, encrypt_like_keylime, python_zip};
use zeroize::Zeroizing;

fn key() -> SymmetricKey {
    SymmetricKey::new(Zeroizing::new(vec![9; 32])).unwrap()
}

fn secure_dir(dir: &Path) -> std::path::PathBuf {
    let secure = dir.join("secure");
    std::fs::create_dir(&secure).unwrap();
    secure
}

fn sized(bytes: u64) -> PayloadConfig {
    PayloadConfig {
        secure_size: SecureSize {
            text: bytes.to_string(),
            bytes,
        },
        ..defaults().payload
    }
}

/// Delivers `zip` after a first payload; on a refusal, checks that the first
/// delivery is still what `unzipped/` holds and returns the error text.
fn deliver_after_first(config: &PayloadConfig, zip: &[u8]) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let secure = secure_dir(dir.path());
    let k = key();
    let first = encrypt_like_keylime(&k, b"the first payload");
    deliver::deliver(&secure, config, &k, Some(&first)).unwrap();
    match deliver::deliver(&secure, config, &k, Some(&encrypt_like_keylime(&k, zip))) {
        Ok(_) => Ok(()),
        Err(e) => {
            assert!(matches!(e, PayloadError::Zip(_)), "{e}");
            let unzipped = secure.join("unzipped");
            assert_eq!(
                std::fs::read(unzipped.join("decrypted_payload")).unwrap(),
                b"the first payload",
                "the refused payload replaced the previous one"
            );
            let left: Vec<_> = std::fs::read_dir(&secure).unwrap().collect();
            assert_eq!(
                left.len(),
                1,
                "only unzipped/ is left in the secure directory"
            );
            Err(e.to_string())
        }
    }
}

#[test]
fn deflated_and_stored_entries_are_unpacked() {
    for method in ["deflated", "stored"] {
        let dir = tempfile::tempdir().unwrap();
        let secure = secure_dir(dir.path());
        let k = key();
        let zip = python_zip(method, &[("inner.txt", 100), ("sub/dir/big.bin", 300_000)]);
        let d = deliver::deliver(
            &secure,
            &defaults().payload,
            &k,
            Some(&encrypt_like_keylime(&k, &zip)),
        )
        .unwrap();
        assert_eq!(
            std::fs::read(d.dir.join("inner.txt")).unwrap(),
            vec![b'x'; 100],
            "{method}"
        );
        assert_eq!(
            std::fs::read(d.dir.join("sub/dir/big.bin")).unwrap().len(),
            300_000,
            "{method}"
        );
    }
}

#[test]
fn other_compression_methods_are_refused_with_what_to_do() {
    let err =
        deliver_after_first(&defaults().payload, &python_zip("bz2", &[("a.txt", 10)])).unwrap_err();
    assert!(
        err.contains("\"a.txt\"") && err.contains("deflated"),
        "{err}"
    );
}

#[test]
fn a_zip_bomb_is_refused_before_anything_is_written() {
    // 8 MiB of one byte deflates to about 8 KB; secure_size is 1 MiB.
    let bomb = python_zip("deflated", &[("bomb.bin", 8 << 20)]);
    assert!(bomb.len() < 64 * 1024, "{} bytes", bomb.len());
    let err = deliver_after_first(&sized(1 << 20), &bomb).unwrap_err();
    assert!(
        err.contains("secure_size") && err.contains("nothing was unpacked"),
        "{err}"
    );
    // Many entries that fit one by one but not together.
    let many = python_zip("deflated", &[("a", 600 << 10), ("b", 600 << 10)]);
    let err = deliver_after_first(&sized(1 << 20), &many).unwrap_err();
    assert!(err.contains("nothing was unpacked"), "{err}");
    // The same archives fit a larger secure_size.
    deliver_after_first(&sized(16 << 20), &bomb).unwrap();
}

#[test]
fn a_header_that_lies_about_the_size_gains_nothing() {
    // Declares 100 bytes, inflates to 400 KB: refused at byte 101.
    let mut zip = python_zip("deflated", &[("liar.bin", 400_000)]);
    declare_size(&mut zip, 100);
    let err = deliver_after_first(&defaults().payload, &zip).unwrap_err();
    // (zip's own reader or keylet's bound says so, whichever sees it first)
    assert!(
        err.contains("\"liar.bin\"") && err.contains("declare"),
        "{err}"
    );
    // Declares more than deflate can make of its compressed bytes.
    let mut zip = python_zip("deflated", &[("ratio.bin", 1000)]);
    declare_size(&mut zip, 200 << 20);
    let err = deliver_after_first(&sized(256 << 20), &zip).unwrap_err();
    assert!(err.contains("zip bomb"), "{err}");
}
