//! The quote path's CPU cost, on quotes recorded from swtpm
//! (core/tests/data/keylime): marshal TPM2_Quote, split and read its
//! response, encode the Keylime quote string, verify ECDSA and RSA quotes, and
//! the whole agent quote path over a scripted in-memory transport.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
#![allow(missing_docs)]

use keylet_core::tpm::transport::BlockOn as _;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use keylet_core::agent::QuoteRequest;
use keylet_core::agent::Tpm;
use keylet_core::keylime::{pcr_blob, quote_string};
use keylet_core::pcr::{HashAlg, PcrMask, PcrValues};
use keylet_core::tpm::transport::Transport;
use keylet_core::tpm::{command, reader, response};
use keylet_core::verify;

macro_rules! vector {
    ($name:literal, $file:literal) => {
        include_bytes!(concat!("../../core/tests/data/keylime/", $name, "/", $file))
    };
}

struct Recorded {
    attest: &'static [u8],
    sig: &'static [u8],
    pcrs: &'static [u8],
    ak_pub: &'static [u8],
    nonce: &'static [u8],
}

const ECC: Recorded = Recorded {
    attest: vector!("ecc_sha256_pcr16", "attest.bin"),
    sig: vector!("ecc_sha256_pcr16", "sig.bin"),
    pcrs: vector!("ecc_sha256_pcr16", "pcrs.bin"),
    ak_pub: vector!("ecc_sha256_pcr16", "ak.pub"),
    nonce: vector!("ecc_sha256_pcr16", "nonce.txt"),
};

const RSA: Recorded = Recorded {
    attest: vector!("rsa_sha256_pcr16", "attest.bin"),
    sig: vector!("rsa_sha256_pcr16", "sig.bin"),
    pcrs: vector!("rsa_sha256_pcr16", "pcrs.bin"),
    ak_pub: vector!("rsa_sha256_pcr16", "ak.pub"),
    nonce: vector!("rsa_sha256_pcr16", "nonce.txt"),
};

/// A response frame: tag, size, rc 0, then `body`.
fn frame(tag: u16, body: &[u8]) -> Vec<u8> {
    let mut f = tag.to_be_bytes().to_vec();
    f.extend_from_slice(&((10 + body.len()) as u32).to_be_bytes());
    f.extend_from_slice(&0u32.to_be_bytes());
    f.extend_from_slice(body);
    f
}

/// A TPM_ST_SESSIONS response with `params` and one empty password session.
fn session_frame(params: &[u8]) -> Vec<u8> {
    let mut body = (params.len() as u32).to_be_bytes().to_vec();
    body.extend_from_slice(params);
    body.extend_from_slice(&[0, 0, 1, 0, 0]);
    frame(0x8002, &body)
}

fn quote_response(r: &Recorded) -> Vec<u8> {
    let mut params = (r.attest.len() as u16).to_be_bytes().to_vec();
    params.extend_from_slice(r.attest);
    params.extend_from_slice(r.sig);
    session_frame(&params)
}

fn pcr_read_response(values: &PcrValues) -> Vec<u8> {
    let mut b = 7u32.to_be_bytes().to_vec(); // pcrUpdateCounter
    b.extend_from_slice(&1u32.to_be_bytes());
    b.extend_from_slice(&values.bank().alg_id().to_be_bytes());
    b.push(3);
    b.extend_from_slice(&values.mask().select_bytes());
    b.extend_from_slice(&(values.mask().count() as u32).to_be_bytes());
    for (_, d) in values.iter() {
        b.extend_from_slice(&(d.as_bytes().len() as u16).to_be_bytes());
        b.extend_from_slice(d.as_bytes());
    }
    frame(0x8001, &b)
}

/// Answers each command by its command code with a canned response.
struct Scripted {
    ok: Vec<u8>,
    pcr_read: Vec<u8>,
    quote: Vec<u8>,
}

impl Transport for Scripted {
    type Error = &'static str;

    async fn transact(&mut self, command: &[u8], out: &mut [u8]) -> Result<usize, Self::Error> {
        let answer = match response::command_code(command) {
            0x13D | 0x182 => &self.ok,
            0x17E => &self.pcr_read,
            0x158 => &self.quote,
            _ => return Err("unexpected command"),
        };
        out.get_mut(..answer.len())
            .ok_or("short buffer")?
            .copy_from_slice(answer);
        Ok(answer.len())
    }
}

fn benches(c: &mut Criterion) {
    let ecc_values = pcr_blob::decode(ECC.pcrs).unwrap();
    let rsa_values = pcr_blob::decode(RSA.pcrs).unwrap();
    let mask = ecc_values.mask();

    c.bench_function("marshal Quote command", |b| {
        let mut buf = [0u8; 4096];
        b.iter(|| {
            command::quote(
                &mut buf,
                0x8000_0001,
                black_box(ECC.nonce),
                HashAlg::Sha256,
                mask,
            )
            .unwrap()
            .len()
        });
    });

    let frame = quote_response(&ECC);
    c.bench_function("parse Quote response", |b| {
        b.iter(|| {
            let r = response::split(0x158, black_box(&frame)).unwrap();
            let q = reader::quote(r.parameters).unwrap();
            (
                verify::read_attest(q.attest).unwrap(),
                verify::read_signature(q.signature).unwrap(),
            )
        });
    });

    c.bench_function("encode Keylime quote string", |b| {
        let mut out = [0u8; 2048];
        b.iter(|| {
            quote_string::encode(black_box(ECC.attest), ECC.sig, &ecc_values, &mut out).unwrap()
        });
    });

    c.bench_function("verify quote ECDSA P-256", |b| {
        b.iter(|| {
            verify::verify_quote(
                black_box(ECC.attest),
                ECC.sig,
                &ecc_values,
                ECC.ak_pub,
                ECC.nonce,
                mask,
            )
            .unwrap()
        });
    });

    c.bench_function("verify quote RSA-2048", |b| {
        b.iter(|| {
            verify::verify_quote(
                black_box(RSA.attest),
                RSA.sig,
                &rsa_values,
                RSA.ak_pub,
                RSA.nonce,
                rsa_values.mask(),
            )
            .unwrap()
        });
    });

    let nk_pem = vector!("ecc_sha256_pcr16", "nk.pem");
    let data_digest = HashAlg::Sha256.hash(nk_pem);
    let mut script = Scripted {
        ok: session_frame(&[]),
        pcr_read: pcr_read_response(&ecc_values),
        quote: frame.clone(),
    };
    c.bench_function("full quote path (scripted transport)", |b| {
        let (mut cmd, mut rsp) = ([0u8; 4096], [0u8; 4096]);
        let mut tpm = Tpm::new(&mut script, &mut cmd, &mut rsp);
        let req = QuoteRequest {
            ak: 0x8000_0001,
            nonce: ECC.nonce,
            bank: HashAlg::Sha256,
            mask: PcrMask::EMPTY.with(10),
            data_digest: data_digest.as_bytes(),
        };
        let mut out = [0u8; 2048];
        b.iter(|| tpm.quote(black_box(&req), &mut out).block_on().unwrap());
    });
}

criterion_group!(quote, benches);
criterion_main!(quote);
