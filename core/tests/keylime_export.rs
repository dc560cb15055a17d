//! Builds Keylime quote strings with keylet's encoder from the recorded
//! vectors and writes what Keylime's `Tpm.check_quote` needs (quote, nonce,
//! AK TPM2B_PUBLIC in base64, hash algorithm, payload key PEM) as JSON.
//!
//! The files are committed under `tests/data/keylime/export/` for
//! `tests/python/check_quote.py`; this test fails if they are stale. Run with
//! `KEYLET_BLESS=1` to rewrite them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "data/keylime/vectors.rs"]
mod vectors;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keylet_core::keylime::{pcr_blob, quote_string};

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn b64(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len().div_ceil(3) * 4];
    let n = STANDARD.encode_slice(bytes, &mut out).unwrap();
    String::from_utf8(out[..n].to_vec()).unwrap()
}

fn export(v: &vectors::Vector) -> String {
    let values = pcr_blob::decode(&v.pcrs).unwrap();
    let mut quote =
        vec![0u8; quote_string::encoded_len(v.attest.len(), v.sig.len(), values.mask())];
    let n = quote_string::encode(&v.attest, &v.sig, &values, &mut quote).unwrap();
    let quote = std::str::from_utf8(&quote[..n]).unwrap();
    format!(
        "{{\n  \"name\": {},\n  \"quote\": {},\n  \"nonce\": {},\n  \"ak_tpm\": {},\n  \"hash_alg\": \"sha256\",\n  \"pubkey\": {}\n}}\n",
        json_string(v.name),
        json_string(quote),
        json_string(std::str::from_utf8(&v.nonce).unwrap()),
        json_string(&b64(&v.ak_pub)),
        json_string(std::str::from_utf8(&v.nk_pem).unwrap()),
    )
}

#[test]
fn exported_check_quote_inputs_are_current() {
    let dir = vectors::dir().join("export");
    let bless = std::env::var_os("KEYLET_BLESS").is_some();
    if bless {
        std::fs::create_dir_all(&dir).unwrap();
    }
    for v in vectors::all() {
        let path = dir.join(format!("{}.json", v.name));
        let text = export(&v);
        if bless {
            std::fs::write(&path, &text).unwrap();
        }
        let committed = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; run with KEYLET_BLESS=1", path.display()));
        assert_eq!(
            committed,
            text,
            "{} is stale; run with KEYLET_BLESS=1",
            path.display()
        );
    }
}
