//! Dictionary-attack protection against a real swtpm: keylet's own work never
//! counts towards a lockout, across unclean TPM restarts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use keylet_core::agent::{BUFFER_SIZE, QuoteRequest, Tpm};
use keylet_core::pcr::{HashAlg, PcrMask};
use keylet_core::public::read_tpm2b_public;
use keylet_core::tpm::command::Auth;
use keylet_core::tpm::template::KeyAlg;
use keylet_core::tpm::transport::BlockOn as _;
use keylet_tests::swtpm::SwtpmTcp;

#[test]
fn tpm_unclean_restarts_after_keylets_work_count_no_failure() {
    let mut sw = SwtpmTcp::start().unwrap();
    let (mut c, mut r) = (vec![0u8; BUFFER_SIZE], vec![0u8; BUFFER_SIZE]);
    let (mut ak_public, mut ak_private) = (vec![0u8; 1024], vec![0u8; 2048]);
    let max_tries = {
        let mut tpm = Tpm::new(sw.transport().unwrap(), &mut c, &mut r);
        let ek = tpm
            .create_ek(KeyAlg::Rsa2048, None, &mut [0u8; 1024])
            .block_on()
            .unwrap();
        let ak = tpm
            .create_ak(
                ek.key(),
                KeyAlg::Rsa2048,
                HashAlg::Sha256,
                &mut ak_public,
                &mut ak_private,
            )
            .block_on()
            .unwrap();
        ak_public.truncate(ak.public_len);
        ak_private.truncate(ak.private_len);
        if ek.transient {
            tpm.flush(ek.handle).block_on().unwrap();
        }
        let lockout = tpm.read_lockout().block_on().unwrap();
        assert_eq!((lockout.in_lockout, lockout.counter), (false, 0));
        lockout.max_tries
    };
    assert!(
        !read_tpm2b_public(&ak_public).unwrap().da_protected(),
        "keylet's AK has noDA"
    );
    // More unclean restarts than the TPM tolerates, each after the EK and the
    // AK were used (load, quote): none counts, and the AK keeps working.
    for round in 0..=max_tries {
        {
            let mut tpm = Tpm::new(sw.transport().unwrap(), &mut c, &mut r);
            tpm.make_clock_safe(Auth::EMPTY, 0).block_on().unwrap();
            let lockout = tpm.read_lockout().block_on().unwrap();
            assert_eq!(
                (lockout.in_lockout, lockout.counter),
                (false, 0),
                "round {round}: {lockout:?}"
            );
            let ek = tpm
                .create_ek(KeyAlg::Rsa2048, None, &mut [0u8; 1024])
                .block_on()
                .unwrap();
            let ak = tpm
                .load_ak(ek.key(), &ak_public, &ak_private)
                .block_on()
                .unwrap();
            let digest = HashAlg::Sha256.hash(b"payload key");
            let req = QuoteRequest {
                ak,
                nonce: b"lockout-nonce",
                bank: HashAlg::Sha256,
                mask: PcrMask::EMPTY,
                data_digest: digest.as_bytes(),
            };
            tpm.quote(&req, &mut vec![0u8; 8192]).block_on().unwrap();
        }
        sw.kill_and_restart().unwrap();
    }
}
