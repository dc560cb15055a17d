//! keylet's `mssim:` transport against a fake Microsoft/IBM simulator
//! (`keylet_tests::mssim_server`) that hands the framed commands to a real
//! swtpm: power-on and NV-on on the platform port, TPM2_Startup, locality 0
//! on every command, the EK, an AK and a quote, session ends on drop.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use keylet_core::tpm::transport::BlockOn as _;
use std::time::Duration;

use keylet::tpm::{Failure, TpmDevice};
use keylet_core::agent::{BUFFER_SIZE, QuoteRequest, Tpm};
use keylet_core::pcr::{HashAlg, PcrMask};
use keylet_core::tpm::template::KeyAlg;
use keylet_tests::mssim_server::MssimServer;
use keylet_tests::swtpm::SwtpmTcp;

const STARTUP: u32 = 0x144;
const QUOTE: u32 = 0x158;

#[test]
fn tpm_mssim_transport_frames_commands_and_powers_the_simulator_on() {
    let sw = SwtpmTcp::start().unwrap();
    let sim = MssimServer::start(sw.port, 0).unwrap();
    let device: TpmDevice = format!("mssim:host=127.0.0.1,port={}", sim.port)
        .parse()
        .unwrap();
    assert_eq!(
        device,
        TpmDevice::Mssim {
            host: "127.0.0.1".into(),
            port: sim.port
        }
    );
    let transport = keylet::tpm::open(&device, keylet::tpm::DEFAULT_TIMEOUT).unwrap();
    {
        let (mut c, mut r) = (vec![0u8; BUFFER_SIZE], vec![0u8; BUFFER_SIZE]);
        let mut tpm = Tpm::new(transport, &mut c, &mut r);
        let mut public = [0u8; 1024];
        let ek = tpm
            .create_ek(KeyAlg::Rsa2048, None, &mut public)
            .block_on()
            .unwrap();
        let (mut p, mut s) = ([0u8; 1024], [0u8; 2048]);
        let made = tpm
            .create_ak(ek.key(), KeyAlg::Rsa2048, HashAlg::Sha256, &mut p, &mut s)
            .block_on()
            .unwrap();
        let ak = tpm
            .load_ak(ek.key(), &p[..made.public_len], &s[..made.private_len])
            .block_on()
            .unwrap();
        let digest = HashAlg::Sha256.hash(b"mssim payload key");
        let req = QuoteRequest {
            ak,
            nonce: b"mssimnonce0123456789",
            bank: HashAlg::Sha256,
            mask: PcrMask::new(0x400).unwrap(),
            data_digest: digest.as_bytes(),
        };
        let mut out = vec![0u8; 8192];
        let n = tpm.quote(&req, &mut out).block_on().unwrap();
        assert!(out[..n].starts_with(b"r"));
        tpm.flush(ak).block_on().unwrap();
        if ek.transient {
            tpm.flush(ek.handle).block_on().unwrap();
        }
    } // dropped: TPM_SESSION_END on both ports
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sim.seen().session_ends < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let seen = sim.seen();
    assert_eq!(seen.signals, [1, 11], "power-on, then NV-on");
    assert_eq!(seen.commands[0], (0, STARTUP), "TPM2_Startup first");
    assert!(seen.commands.iter().all(|(loc, _)| *loc == 0), "locality 0");
    assert!(seen.commands.iter().any(|(_, cc)| *cc == QUOTE));
    assert_eq!(seen.session_ends, 2, "session end on both ports");
}

#[test]
fn tpm_mssim_transport_refuses_a_simulator_that_refuses_power_on() {
    let sw = SwtpmTcp::start().unwrap();
    let sim = MssimServer::start(sw.port, 1).unwrap();
    let device = format!("mssim:host=127.0.0.1,port={}", sim.port)
        .parse()
        .unwrap();
    let err = keylet::tpm::open(&device, Duration::from_secs(5)).unwrap_err();
    assert!(matches!(err.failure, Failure::Open(_)), "{err}");
    let text = err.to_string();
    assert!(text.contains("mssim:host=127.0.0.1"), "{text}");
    assert!(text.contains("platform signal 1"), "{text}");
}

#[test]
fn tpm_mssim_transport_names_the_simulator_when_nothing_listens() {
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port(); // bound, then released: nothing listens there now
    let device = format!("mssim:host=127.0.0.1,port={port}").parse().unwrap();
    let err = keylet::tpm::open(&device, Duration::from_secs(5)).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("mssim:host=127.0.0.1,port={port}")),
        "{err}"
    );
}
