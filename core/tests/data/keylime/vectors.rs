//! Loads the golden quote vectors recorded by `make_vectors.sh` (shared by
//! the integration tests through `#[path]`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

/// One recorded quote with its keys.
pub struct Vector {
    pub name: &'static str,
    pub attest: Vec<u8>,
    pub sig: Vec<u8>,
    pub pcrs: Vec<u8>,
    pub ak_pub: Vec<u8>,
    pub ak_pem: Vec<u8>,
    pub ek_pub: Vec<u8>,
    pub ek_pem: Vec<u8>,
    pub nk_pem: Vec<u8>,
    pub nonce: Vec<u8>,
    pub credential: Vec<u8>,
    pub challenge: Vec<u8>,
    pub selection: String,
}

pub const NAMES: [&str; 3] = ["rsa_sha256_pcr16", "rsa_sha256_multi", "ecc_sha256_pcr16"];

pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/keylime")
}

pub fn load(name: &'static str) -> Vector {
    let d = dir().join(name);
    let read = |f: &str| std::fs::read(d.join(f)).unwrap_or_else(|e| panic!("{name}/{f}: {e}"));
    Vector {
        name,
        attest: read("attest.bin"),
        sig: read("sig.bin"),
        pcrs: read("pcrs.bin"),
        ak_pub: read("ak.pub"),
        ak_pem: read("ak.pem"),
        ek_pub: read("ek.pub"),
        ek_pem: read("ek.pem"),
        nk_pem: read("nk.pem"),
        nonce: read("nonce.txt"),
        credential: read("credential.bin"),
        challenge: read("challenge.txt"),
        selection: String::from_utf8(read("selection.txt")).unwrap(),
    }
}

pub fn all() -> Vec<Vector> {
    NAMES.iter().map(|n| load(n)).collect()
}
