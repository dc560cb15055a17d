//! The TPM layer against frames captured from swtpm: builders reproduce the
//! commands swtpm accepted, readers accept its responses, and values the
//! TPM computed (Names, PCR reads, certificate sizes) match keylet's.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "data/frames/frames.rs"]
mod frames;

use keylet_core::agent::der_sequence_len;
use keylet_core::pcr::{HashAlg, PcrMask};
use keylet_core::tpm::command::{self, Auth};
use keylet_core::tpm::pcr_read::PcrReadLoop;
use keylet_core::tpm::response::{self, ResponseError};
use keylet_core::tpm::template::{self, KeyAlg, RH_ENDORSEMENT};
use keylet_core::tpm::{capability, command_keys, name, reader};

const ALL: [&str; 5] = [
    "keys.txt",
    "quote_path.txt",
    "ek_cert.txt",
    "misc.txt",
    "certify.txt",
];

fn params(f: &frames::Frame) -> Vec<u8> {
    response::split(f.cc, &f.response)
        .unwrap()
        .parameters
        .to_vec()
}

#[test]
fn every_response_splits_and_reads() {
    for file in ALL {
        let cap = frames::load(file);
        assert!(!cap.frames.is_empty(), "{file}");
        for f in &cap.frames {
            let r = match response::split(f.cc, &f.response) {
                Ok(r) => r,
                Err(ResponseError::Tpm { rc, .. }) if rc.is_retryable() => continue,
                Err(e) => panic!("{file}: {e}"),
            };
            let p = r.parameters;
            let ok = match f.cc {
                0x131 => reader::create_primary(p).is_ok() && r.handle().is_some(),
                0x153 => reader::create(p).is_ok(),
                0x157 => reader::load(p).is_ok() && r.handle().is_some(),
                0x173 => reader::read_public(p).is_ok(),
                0x169 => reader::nv_read_public(p).is_ok(),
                0x14E => reader::nv_read(p).is_ok(),
                0x176 => reader::start_auth_session(p).is_ok() && r.handle().is_some(),
                0x147 => reader::activate_credential(p).is_ok(),
                0x17B => reader::get_random(p).is_ok(),
                0x17A => capability::read(p).is_ok(),
                0x17E => reader::pcr_read(p).is_ok(),
                0x158 => reader::quote(p).is_ok(),
                0x168 => reader::make_credential(p).is_ok(),
                0x148 => reader::certify(p).is_ok(),
                _ => true,
            };
            assert!(ok, "{file}: reader rejected the response to {:#x}", f.cc);
        }
    }
}

#[test]
fn names_match_what_the_tpm_computed() {
    let cap = frames::load("keys.txt");
    let primary = cap.with_cc(0x131).next().unwrap();
    let p = params(primary);
    let ek = reader::create_primary(&p).unwrap();
    assert_eq!(
        name::of_tpm2b_public(ek.public).unwrap().as_bytes(),
        ek.name
    );

    let created = params(cap.with_cc(0x153).next().unwrap());
    let ak = reader::create(&created).unwrap();
    let loaded = params(cap.with_cc(0x157).next().unwrap());
    let tpm_name = reader::load(&loaded).unwrap();
    assert_eq!(
        name::of_tpm2b_public(ak.public).unwrap().as_bytes(),
        tpm_name
    );

    let ek_cert = frames::load("ek_cert.txt");
    let rp = params(ek_cert.with_cc(0x173).next().unwrap());
    let persistent = reader::read_public(&rp).unwrap();
    assert_eq!(
        name::of_tpm2b_public(persistent.public).unwrap().as_bytes(),
        persistent.name
    );
}

#[test]
fn builders_reproduce_the_recorded_commands() {
    let keys = frames::load("keys.txt");
    let mut buf = [0u8; 4096];
    let ek_t = template::ek_template(KeyAlg::EccP256).unwrap();
    let built = command_keys::create_primary(&mut buf, RH_ENDORSEMENT, Auth::EMPTY, &ek_t).unwrap();
    assert_eq!(built, &keys.with_cc(0x131).next().unwrap().command[..]);
    let session_frame = keys.with_cc(0x176).next().unwrap();
    assert_eq!(
        command_keys::start_policy_session(&mut buf, HashAlg::Sha256).unwrap(),
        &session_frame.command[..]
    );
    let session = response::split(0x176, &session_frame.response)
        .unwrap()
        .handle()
        .unwrap();
    assert_eq!(
        command_keys::policy_secret(&mut buf, RH_ENDORSEMENT, Auth::EMPTY, session).unwrap(),
        &keys.with_cc(0x151).next().unwrap().command[..]
    );
    let ek_handle = response::split(0x131, &keys.with_cc(0x131).next().unwrap().response)
        .unwrap()
        .handle()
        .unwrap();
    let ak_t = template::ak_template(KeyAlg::EccP256, HashAlg::Sha256).unwrap();
    assert_eq!(
        command_keys::create(&mut buf, ek_handle, Auth::Policy(session), &ak_t).unwrap(),
        &keys.with_cc(0x153).next().unwrap().command[..]
    );
    let created = params(keys.with_cc(0x153).next().unwrap());
    let ak = reader::create(&created).unwrap();
    let load_frame = keys.with_cc(0x157).next().unwrap();
    let load_session = u32::from_be_bytes(load_frame.command[18..22].try_into().unwrap());
    assert_eq!(
        command_keys::load(
            &mut buf,
            ek_handle,
            Auth::Policy(load_session),
            ak.private,
            ak.public
        )
        .unwrap(),
        &load_frame.command[..]
    );
    assert_eq!(
        command::flush_context(&mut buf, session).unwrap(),
        &keys.with_cc(0x165).next().unwrap().command[..]
    );

    let q = frames::load("quote_path.txt");
    let nonce = frames::unhex(q.header("nonce"));
    let ak_handle = u32::from_str_radix(q.header("ak").trim_start_matches("0x"), 16).unwrap();
    let mask = PcrMask::new(0x0041_0400).unwrap();
    assert_eq!(
        command::quote(&mut buf, ak_handle, &nonce, HashAlg::Sha256, mask).unwrap(),
        &q.with_cc(0x158).next().unwrap().command[..]
    );
    assert_eq!(
        command::pcr_reset(&mut buf, 16).unwrap(),
        &q.with_cc(0x13D).next().unwrap().command[..]
    );
}

#[test]
fn pcr_read_loop_replays_three_rounds() {
    let misc = frames::load("misc.txt");
    let reads: Vec<_> = misc.with_cc(0x17E).collect();
    assert_eq!(reads.len(), 3, "24 sha256 PCRs take 3 PCR_Read calls");
    let mut l = PcrReadLoop::new(HashAlg::Sha256, PcrMask::new(0x00FF_FFFF).unwrap());
    let mut buf = [0u8; 256];
    for f in reads {
        assert_eq!(l.next_command(&mut buf).unwrap().unwrap(), &f.command[..]);
        l.accept(&params(f)).unwrap();
    }
    assert!(l.is_complete());
    assert!(l.next_command(&mut buf).unwrap().is_none());
    let v = l.into_values();
    assert_eq!(v.iter().count(), 24);
    // After Startup(CLEAR) on swtpm, PCRs 17-22 read as all ones.
    assert!(v.get(17).unwrap().as_bytes().iter().all(|b| *b == 0xff));
    assert!(v.get(0).unwrap().as_bytes().iter().all(|b| *b == 0));
}

#[test]
fn pcr_read_loop_restarts_when_the_counter_moves() {
    let misc = frames::load("misc.txt");
    let reads: Vec<_> = misc.with_cc(0x17E).collect();
    let mut l = PcrReadLoop::new(HashAlg::Sha256, PcrMask::new(0x00FF_FFFF).unwrap());
    l.accept(&params(reads[0])).unwrap();
    let mut moved = params(reads[1]);
    moved[3] ^= 1; // pcrUpdateCounter changed between calls
    l.accept(&moved).unwrap();
    assert_eq!(l.values().missing().bits(), 0x00FF_FFFF, "read starts over");
}

#[test]
fn ek_certificate_size_and_der_length() {
    let cap = frames::load("ek_cert.txt");
    let nv = reader::nv_read_public(&params(cap.with_cc(0x169).next().unwrap())).unwrap();
    assert_eq!(nv.index, 0x01C0_0002);
    let data: Vec<u8> = cap
        .with_cc(0x14E)
        .flat_map(|f| reader::nv_read(&params(f)).unwrap().to_vec())
        .collect();
    assert_eq!(data.len(), usize::from(nv.data_size));
    let der = der_sequence_len(&data).unwrap();
    assert!(der <= data.len() && der > 500, "{der}");
    let cap_params = params(cap.with_cc(0x17A).next().unwrap());
    let bufmax = capability::read(&cap_params).unwrap();
    assert_eq!(bufmax.property(capability::PT_NV_BUFFER_MAX), Some(1024));
}

#[test]
fn truncated_and_corrupted_responses_are_errors_not_panics() {
    for file in ALL {
        for f in &frames::load(file).frames {
            for cut in 0..f.response.len() {
                let r = &f.response[..cut];
                assert!(
                    response::split(f.cc, r).is_err(),
                    "{file} {:#x} cut {cut}",
                    f.cc
                );
            }
            if let Ok(r) = response::split(f.cc, &f.response) {
                let p = r.parameters;
                for cut in 0..p.len() {
                    let short = &p[..cut];
                    let _ = reader::quote(short);
                    let _ = reader::pcr_read(short);
                    let _ = reader::create(short);
                    let _ = reader::create_primary(short);
                    let _ = reader::read_public(short);
                    let _ = reader::nv_read_public(short);
                    let _ = capability::read(short);
                }
            }
        }
    }
}

/// TPM2_Certify of each AK by itself, as the push model's proof of
/// possession: the builder reproduces the command swtpm accepted, the
/// reader and the self-check accept its answer (extraData = the challenge,
/// the certified Name = the AK's Name computed by keylet), the signature
/// verifies under the AK, and a wrong challenge or Name is refused.
#[test]
fn certify_frames_build_read_and_verify() {
    use keylet_core::public::{PublicKey, read_tpm2b_public};
    use keylet_core::verify::{self, QuoteError, Signature};
    let cap = frames::load("certify.txt");
    let challenge = frames::unhex(cap.header("challenge"));
    let certifies: Vec<_> = cap.with_cc(0x148).collect();
    assert_eq!(certifies.len(), 2);
    for (tag, f) in ["rsa", "ecc"].into_iter().zip(certifies) {
        let handle = u32::from_str_radix(
            cap.header(&format!("{tag}_ak")).trim_start_matches("0x"),
            16,
        )
        .unwrap();
        let public = frames::unhex(cap.header(&format!("{tag}_ak_public")));
        let name_bytes = frames::unhex(cap.header(&format!("{tag}_ak_name")));
        assert_eq!(
            name::of_tpm2b_public(&public).unwrap().as_bytes(),
            &name_bytes[..]
        );
        let mut buf = [0u8; 256];
        let built = command::certify(
            &mut buf,
            handle,
            Auth::EMPTY,
            handle,
            Auth::EMPTY,
            &challenge,
        )
        .unwrap();
        assert_eq!(built, &f.command[..], "{tag}: certify command");
        let p = params(f);
        let parts = reader::certify(&p).unwrap();
        let info = verify::check_certify(parts.attest, &challenge, &name_bytes).unwrap();
        assert_eq!(info.extra_data, &challenge[..]);
        assert!(info.clock.safe);
        assert_eq!(
            verify::check_certify(parts.attest, b"another challenge", &name_bytes),
            Err(QuoteError::NonceMismatch)
        );
        let mut other = name_bytes.clone();
        *other.last_mut().unwrap() ^= 1;
        assert_eq!(
            verify::check_certify(parts.attest, &challenge, &other),
            Err(QuoteError::NameMismatch)
        );
        assert!(matches!(
            verify::read_attest(parts.attest),
            Err(QuoteError::WrongType { found: 0x8017 })
        ));
        let key = read_tpm2b_public(&public).unwrap().key;
        let sig = verify::read_signature(parts.signature).unwrap();
        let digest = sig.hash().hash(parts.attest);
        match (key, sig) {
            (PublicKey::EccP256 { x, y }, Signature::Ecdsa { r, s, .. }) => {
                verify::verify_ecdsa_p256(x, y, &digest, r, s).unwrap();
            }
            (PublicKey::Rsa { modulus, exponent }, Signature::RsaSsa { hash, sig }) => {
                let got = verify::verify_rsassa(modulus, exponent, hash, &digest, sig);
                if cfg!(feature = "alloc") {
                    got.unwrap();
                } else {
                    assert_eq!(got, Err(QuoteError::RsaUnavailable));
                }
            }
            other => panic!("{tag}: key and signature do not match: {other:?}"),
        }
    }
}

/// The push-model quote: no PCR 16 (no PCR_Reset/PCR_Extend in the
/// capture), the challenge bytes as qualifyingData, and the recorded quote
/// string splits into the three base64 texts the evidence carries.
#[test]
fn push_quote_frames_have_no_data_pcr() {
    use keylet_core::keylime::quote_string;
    use keylet_core::verify;
    let cap = frames::load("certify.txt");
    assert_eq!(cap.with_cc(0x13D).count(), 0, "no PCR_Reset");
    assert_eq!(cap.with_cc(0x182).count(), 0, "no PCR_Extend");
    let challenge = frames::unhex(cap.header("challenge"));
    let q = cap.with_cc(0x158).last().unwrap();
    let p = params(q);
    let parts = reader::quote(&p).unwrap();
    let attest = verify::read_attest(parts.attest).unwrap();
    assert_eq!(attest.extra_data, &challenge[..]);
    let mask = u32::from_str_radix(cap.header("mask").trim_start_matches("0x"), 16).unwrap();
    assert_eq!(attest.info.selection, PcrMask::new(mask).unwrap());
    let text = cap.header("quote_string");
    let [a, s, b] = quote_string::split(text).unwrap();
    assert_eq!(format!("r{a}:{s}:{b}"), text);
    let mut buf = [0u8; 4096];
    let decoded = quote_string::decode(text, &mut buf).unwrap();
    assert_eq!(decoded.attest, parts.attest);
    assert_eq!(decoded.signature, parts.signature);
}
