//! Captures real swtpm frames into core/tests/data/frames/*.txt for the
//! core's offline tests. Run on purpose only:
//!
//! ```text
//! cargo test -p keylet-tests --test tpm_frames -- --ignored
//! ```
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use keylet_core::tpm::transport::BlockOn as _;
use std::fmt::Write as _;
use std::path::PathBuf;

use keylet_core::agent::{BUFFER_SIZE, CertifyRequest, EkHandle, QuoteRequest, Tpm};
use keylet_core::pcr::{HashAlg, PcrMask};
use keylet_core::tpm::command::Auth;
use keylet_core::tpm::template::{EK_CERT_RSA_2048, EK_PERSISTENT_RSA, EkAuth, KeyAlg};
use keylet_core::tpm::{command, command_keys, name, reader};
use keylet_tests::swtpm::{Recorder, SwtpmTcp};

/// Inputs of the recorded quote path; the replay test reads them back.
const NONCE: &[u8] = b"keylet-frames-nonce1";
const MASK: u32 = 0x0040_0400;
const PAYLOAD_PEM: &[u8] = b"-----BEGIN PUBLIC KEY-----\nkeylet frames\n-----END PUBLIC KEY-----\n";

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

/// The TCG EK of `alg` as a transient object (the captures show
/// TPM2_CreatePrimary, whatever is persisted at the TCG handle).
fn transient_ek<T: keylet_core::tpm::transport::Transport>(
    tpm: &mut Tpm<'_, T>,
    alg: KeyAlg,
    public: &mut [u8],
) -> EkHandle {
    let t = keylet_core::tpm::template::ek_template(alg).unwrap();
    EkHandle {
        handle: tpm
            .create_endorsement_primary(&t, public)
            .block_on()
            .unwrap()
            .0,
        auth: EkAuth::of_attributes(t.object_attributes.bits()),
    }
}

fn frames_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../core/tests/data/frames")
}

fn save(name: &str, header: &[String], lines: &mut Vec<String>) {
    let mut text = String::new();
    for h in header {
        text.push_str("# ");
        text.push_str(h);
        text.push('\n');
    }
    for l in lines.drain(..) {
        text.push_str(&l);
        text.push('\n');
    }
    std::fs::create_dir_all(frames_dir()).unwrap();
    std::fs::write(frames_dir().join(name), text).unwrap();
}

#[test]
#[ignore = "writes core/tests/data/frames; run with --ignored to re-capture"]
fn tpm_capture_frames() {
    let sw = SwtpmTcp::start().unwrap();
    let (mut c, mut r) = (vec![0u8; BUFFER_SIZE], vec![0u8; BUFFER_SIZE]);
    let mut tpm = Tpm::new(Recorder::new(sw.transport().unwrap()), &mut c, &mut r);
    let what = "swtpm 0.7.1 (fresh state from swtpm_setup --create-ek-cert --lock-nvram)";

    // Keys: EK (ECC, L-2), AK create + load under it.
    let mut ek_pub = [0u8; 1024];
    let ek = transient_ek(&mut tpm, KeyAlg::EccP256, &mut ek_pub);
    let (mut p, mut s) = ([0u8; 1024], [0u8; 2048]);
    let ak = tpm
        .create_ak(ek, KeyAlg::EccP256, HashAlg::Sha256, &mut p, &mut s)
        .block_on()
        .unwrap();
    let ak_handle = tpm
        .load_ak(ek, &p[..ak.public_len], &s[..ak.private_len])
        .block_on()
        .unwrap();
    save(
        "keys.txt",
        &[
            what.into(),
            "EK L-2 CreatePrimary, AK (ECC P-256, SHA-256) Create and Load under it".into(),
        ],
        &mut tpm.transport_mut().lines,
    );

    // The quote path, the first signature of this swtpm process.
    let digest = HashAlg::Sha256.hash(PAYLOAD_PEM);
    let req = QuoteRequest {
        ak: ak_handle,
        nonce: NONCE,
        bank: HashAlg::Sha256,
        mask: PcrMask::new(MASK).unwrap(),
        data_digest: digest.as_bytes(),
    };
    let mut out = vec![0u8; 8192];
    let n = tpm.quote(&req, &mut out).block_on().unwrap();
    save(
        "quote_path.txt",
        &[
            what.into(),
            "quote path: PCR_Read, PCR_Reset(16), PCR_Extend(16), Quote (first quote: RETRY)"
                .into(),
            format!("nonce {}", hex(NONCE)),
            "bank sha256".into(),
            format!("mask {MASK:#x}"),
            format!("data_digest {}", hex(digest.as_bytes())),
            format!("ak {ak_handle:#x}"),
            format!("quote_string {}", std::str::from_utf8(&out[..n]).unwrap()),
        ],
        &mut tpm.transport_mut().lines,
    );

    // EK certificate and the persistent EK.
    let mut cert = vec![0u8; 4096];
    tpm.read_ek_cert(EK_CERT_RSA_2048, &mut cert)
        .block_on()
        .unwrap();
    let mut pe = [0u8; 1024];
    tpm.create_ek(KeyAlg::Rsa2048, Some(EK_PERSISTENT_RSA), &mut pe)
        .block_on()
        .unwrap();
    save(
        "ek_cert.txt",
        &[
            what.into(),
            "NV_ReadPublic, GetCapability(NV_BUFFER_MAX), NV_Read of 0x01c00002; ReadPublic 0x81010001".into(),
        ],
        &mut tpm.transport_mut().lines,
    );

    // Misc: random, 24 PCRs, credential activation, handles, flushes.
    let mut rnd = [0u8; 16];
    tpm.get_random(&mut rnd).block_on().unwrap();
    tpm.read_pcrs(HashAlg::Sha256, PcrMask::new(0x00FF_FFFF).unwrap())
        .block_on()
        .unwrap();
    let ak_name = name::of_tpm2b_public(&p[..ak.public_len]).unwrap();
    let secret = [0x5Au8; 32];
    let (blob, enc) = {
        let r = tpm
            .execute(|b| command_keys::make_credential(b, ek.handle, &secret, ak_name.as_bytes()))
            .block_on()
            .unwrap();
        let (b, e) = reader::make_credential(r.parameters).unwrap();
        (b.to_vec(), e.to_vec())
    };
    let mut got = [0u8; 64];
    tpm.activate_credential(ak_handle, ek, &blob, &enc, &mut got)
        .block_on()
        .unwrap();
    tpm.execute(|b| {
        command::get_capability(
            b,
            keylet_core::tpm::capability::CAP_HANDLES,
            0x8000_0000,
            32,
        )
    })
    .block_on()
    .unwrap();
    tpm.flush(ak_handle).block_on().unwrap();
    tpm.flush(ek.handle).block_on().unwrap();
    save(
        "misc.txt",
        &[
            what.into(),
            "GetRandom, PCR_Read sha256 0-23 (3 rounds), MakeCredential, ActivateCredential, GetCapability(HANDLES), FlushContext".into(),
        ],
        &mut tpm.transport_mut().lines,
    );
}

/// Inputs of the recorded TPM2_Certify and push-model quote captures.
const CHALLENGE: [u8; 16] = *b"keylet-challenge";
const PUSH_MASK: u32 = 0x0000_8400;

#[test]
#[ignore = "writes core/tests/data/frames/certify.txt; run with --ignored to re-capture"]
fn tpm_capture_certify_frames() {
    let sw = SwtpmTcp::start().unwrap();
    let (mut c, mut r) = (vec![0u8; BUFFER_SIZE], vec![0u8; BUFFER_SIZE]);
    let mut tpm = Tpm::new(Recorder::new(sw.transport().unwrap()), &mut c, &mut r);
    let mut header = vec![
        "swtpm 0.7.1 (fresh state from swtpm_setup --create-ek-cert --lock-nvram)".to_string(),
        "RSA and ECC AKs, each certified by itself (TPM2_Certify, the push model's proof of \
         possession); a push-model quote (no PCR 16) with the RSA AK"
            .to_string(),
        format!("challenge {}", hex(&CHALLENGE)),
        format!("mask {PUSH_MASK:#x}"),
    ];
    for (tag, alg) in [("rsa", KeyAlg::Rsa2048), ("ecc", KeyAlg::EccP256)] {
        let mut ek_pub = [0u8; 1024];
        let ek = transient_ek(&mut tpm, alg, &mut ek_pub);
        let (mut p, mut s) = ([0u8; 1024], [0u8; 2048]);
        let ak = tpm
            .create_ak(ek, alg, HashAlg::Sha256, &mut p, &mut s)
            .block_on()
            .unwrap();
        let handle = tpm
            .load_ak(ek, &p[..ak.public_len], &s[..ak.private_len])
            .block_on()
            .unwrap();
        tpm.flush(ek.handle).block_on().unwrap();
        let ak_public = &p[..ak.public_len];
        let ak_name = name::of_tpm2b_public(ak_public).unwrap();
        let req = CertifyRequest {
            object: handle,
            object_auth: Auth::EMPTY,
            sign: handle,
            sign_auth: Auth::EMPTY,
            qualifying: &CHALLENGE,
            object_name: ak_name.as_bytes(),
        };
        let mut out = vec![0u8; 2048];
        tpm.certify(&req, &mut out).block_on().unwrap();
        header.push(format!("{tag}_ak {handle:#x}"));
        header.push(format!("{tag}_ak_public {}", hex(ak_public)));
        header.push(format!("{tag}_ak_name {}", hex(ak_name.as_bytes())));
        if alg == KeyAlg::Rsa2048 {
            let mut q = vec![0u8; 8192];
            let n = tpm
                .quote_pcrs(
                    handle,
                    &CHALLENGE,
                    HashAlg::Sha256,
                    PcrMask::new(PUSH_MASK).unwrap(),
                    &mut q,
                )
                .block_on()
                .unwrap();
            header.push(format!(
                "quote_string {}",
                std::str::from_utf8(&q[..n]).unwrap()
            ));
        }
        tpm.flush(handle).block_on().unwrap();
    }
    save("certify.txt", &header, &mut tpm.transport_mut().lines);
}
