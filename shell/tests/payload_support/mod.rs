//! Shared helpers for the payload tests: the vectors made by Keylime's own
//! Python code (tests/data/payload/make_vectors.py) and a KeyBootstrap
//! built on their NK.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keylet::config::{AgentConfig, PayloadConfig, RawConfig};
use keylet::keys::{PayloadKey, load_or_create_payload_key};
use keylet::payload::KeyBootstrap;
use serde_json::Value;

pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/payload")
}

/// keylet's configuration with every option at its default.
pub fn defaults() -> AgentConfig {
    AgentConfig::from_raw(&RawConfig::default(), &mut Vec::new()).unwrap()
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
    KeyBootstrap::new(nk(dir), vectors.agent_id, config, accept.then_some(secure))
}

/// A zip made by Python's zipfile: `method` is "stored", "deflated" or "bz2";
/// each entry is (name, length) and holds that many b"x" bytes.
pub fn python_zip(method: &str, entries: &[(&str, usize)]) -> Vec<u8> {
    let list: Vec<String> = entries
        .iter()
        .map(|(n, len)| format!("({n:?},{len})"))
        .collect();
    let script = format!(
        "import io,sys,zipfile\n\
         m={{'stored':zipfile.ZIP_STORED,'deflated':zipfile.ZIP_DEFLATED,'bz2':zipfile.ZIP_BZIP2}}[{method:?}]\n\
         b=io.BytesIO()\nz=zipfile.ZipFile(b,'w',m)\n\
         for n,l in [{}]: z.writestr(n,b'x'*l)\n\
         z.close()\nsys.stdout.buffer.write(b.getvalue())",
        list.join(",")
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Sets the uncompressed size that `zip` declares for its first entry, in the
/// local header and in the central directory (a lying header).
pub fn declare_size(zip: &mut [u8], size: u32) {
    let local = zip.windows(4).position(|w| w == b"PK\x03\x04").unwrap();
    zip[local + 22..local + 26].copy_from_slice(&size.to_le_bytes());
    let central = zip.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    zip[central + 24..central + 28].copy_from_slice(&size.to_le_bytes());
}

/// IV(16) ‖ ciphertext ‖ tag, as keylime.crypto.encrypt lays it out.
pub fn encrypt_like_keylime(k: &keylet::payload::SymmetricKey, plain: &[u8]) -> Vec<u8> {
    use aes_gcm::aead::consts::U16;
    use aes_gcm::aes::Aes256;
    use aes_gcm::{AeadInOut, AesGcm, KeyInit, Nonce};
    let iv = [7u8; 16];
    let cipher = AesGcm::<Aes256, U16>::new_from_slice(k.as_bytes()).unwrap();
    let mut buf = plain.to_vec();
    let tag = cipher
        .encrypt_inout_detached(
            &Nonce::<U16>::try_from(&iv[..]).unwrap(),
            b"",
            buf.as_mut_slice().into(),
        )
        .unwrap();
    [iv.as_slice(), &buf, tag.as_slice()].concat()
}
