//! Shared helpers for the payload tests: the vectors made by Keylime's own
//! Python code (tests/data/payload/make_vectors.py) and a KeyBootstrap
//! built on their NK.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keylet::config::PayloadConfig;
use keylet::keys::{PayloadKey, load_or_create_payload_key};
use keylet::payload::{Delivery, KeyBootstrap, SecureDir};
use serde_json::Value;

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/payload")
}

/// One case of vectors.json.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub k: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
    pub encrypted_u: Vec<u8>,
    pub encrypted_v: Vec<u8>,
    pub encrypted_u_b64: String,
    pub encrypted_v_b64: String,
    pub auth_tag: String,
    pub payload_b64: String,
    pub plaintext: Vec<u8>,
    pub verify_hmac: String,
}

impl Case {
    pub fn tag(&self) -> [u8; 48] {
        let bytes: Vec<u8> = (0..self.auth_tag.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&self.auth_tag[i..i + 2], 16).unwrap())
            .collect();
        bytes.try_into().unwrap()
    }

    pub fn payload(&self) -> Vec<u8> {
        STANDARD.decode(&self.payload_b64).unwrap()
    }
}

pub struct Vectors {
    pub agent_id: String,
    pub challenge: String,
    pub cases: Vec<Case>,
}

impl Vectors {
    pub fn load() -> Self {
        let text = std::fs::read_to_string(data_dir().join("vectors.json")).unwrap();
        let json: Value = serde_json::from_str(&text).unwrap();
        let s = |c: &Value, k: &str| c[k].as_str().unwrap().to_owned();
        let b = |c: &Value, k: &str| STANDARD.decode(c[k].as_str().unwrap()).unwrap();
        let cases = json["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| Case {
                name: s(c, "name"),
                k: b(c, "k"),
                u: b(c, "u"),
                v: b(c, "v"),
                encrypted_u: b(c, "encrypted_u"),
                encrypted_v: b(c, "encrypted_v"),
                encrypted_u_b64: s(c, "encrypted_u"),
                encrypted_v_b64: s(c, "encrypted_v"),
                auth_tag: s(c, "auth_tag"),
                payload_b64: s(c, "payload"),
                plaintext: b(c, "plaintext"),
                verify_hmac: s(c, "verify_hmac"),
            })
            .collect();
        Self {
            agent_id: s(&json, "agent_id"),
            challenge: s(&json, "challenge"),
            cases,
        }
    }

    pub fn case(&self, name: &str) -> &Case {
        self.cases.iter().find(|c| c.name == name).unwrap()
    }
}

/// The vectors' NK, loaded the way keylet loads its payload key (0600 file).
pub fn nk(dir: &Path) -> PayloadKey {
    let pem = std::fs::read(data_dir().join("nk.pem")).unwrap();
    let path = dir.join("payload-private.pem");
    keylet::store::write_private(&path, &pem).unwrap();
    load_or_create_payload_key(&path, "").unwrap()
}

/// A KeyBootstrap for the vectors' agent id, delivering into `dir/secure`
/// (a plain directory) with `config`; `accept = false` refuses payloads.
pub fn bootstrap(dir: &Path, config: PayloadConfig, accept: bool) -> KeyBootstrap {
    let vectors = Vectors::load();
    let secure = dir.join("secure");
    std::fs::create_dir_all(&secure).unwrap();
    KeyBootstrap::new(
        nk(dir),
        vectors.agent_id,
        Delivery {
            config,
            secure: accept.then(|| SecureDir::at(secure)),
        },
    )
}
