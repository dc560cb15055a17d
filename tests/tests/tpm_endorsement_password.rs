//! An endorsement hierarchy with a password (`tpm2_changeauth -c e`), as
//! hardened hosts and keylime-tests' EK tests set it: keylet creates the EK
//! and its AK, and activates a credential, with `tpm_ownerpassword` as that
//! password; without it the TPM refuses with TPM_RC_BAD_AUTH, and the error
//! says a password is wrong (the shell's hint names the option: tpm/hint.rs).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use keylet_core::tpm::transport::BlockOn as _;
use std::process::Command;

use keylet_core::agent::{BUFFER_SIZE, Tpm};
use keylet_core::pcr::HashAlg;
use keylet_core::tpm::rc::RcClass;
use keylet_core::tpm::template::KeyAlg;
use keylet_tests::credential;
use keylet_tests::swtpm::SwtpmTcp;

const PASSWORD: &[u8] = b"abc123";

#[test]
fn tpm_ek_and_ak_with_an_endorsement_password() {
    let swtpm = SwtpmTcp::start().unwrap();
    let out = Command::new("tpm2_changeauth")
        .args(["-c", "e", "abc123"])
        .env(
            "TPM2TOOLS_TCTI",
            format!("swtpm:host=127.0.0.1,port={}", swtpm.port),
        )
        .output()
        .expect("tpm2_changeauth (install tpm2-tools)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    for alg in [KeyAlg::Rsa2048, KeyAlg::EccP256, KeyAlg::EccP384] {
        let (mut c, mut r) = (vec![0; BUFFER_SIZE], vec![0; BUFFER_SIZE]);

        // Without the password: refused, with the remedy in the error.
        {
            let mut tpm = Tpm::new(swtpm.transport().unwrap(), &mut c, &mut r);
            let mut public = vec![0u8; 1024];
            // swtpm_setup persisted the RSA EK: it is read, not created, so
            // the refusal comes at the AK (PolicySecret); the others at CreatePrimary.
            let refused = match tpm.create_ek(alg, None, &mut public).block_on() {
                Err(e) => e,
                Ok(ek) => {
                    let (mut p, mut s) = ([0u8; 1024], [0u8; 2048]);
                    let e = tpm
                        .create_ak(ek.key(), alg.ak_alg(), HashAlg::Sha256, &mut p, &mut s)
                        .block_on()
                        .unwrap_err();
                    if ek.transient {
                        tpm.flush(ek.handle).block_on().unwrap();
                    }
                    e
                }
            };
            assert_eq!(
                refused.rc().and_then(|rc| rc.class()),
                Some(RcClass::BadAuth),
                "{alg:?}: {refused}"
            );
            let said = refused.to_string();
            assert!(said.contains("password"), "{alg:?}: {said}");
        }

        // With it: EK, AK, and a credential activated through the EK.
        let mut tpm = Tpm::new(swtpm.transport().unwrap(), &mut c, &mut r)
            .with_endorsement_password(PASSWORD);
        let mut public = vec![0u8; 1024];
        let ek = tpm.create_ek(alg, None, &mut public).block_on().unwrap();
        let (mut p, mut s) = ([0u8; 1024], [0u8; 2048]);
        let made = tpm
            .create_ak(ek.key(), alg.ak_alg(), HashAlg::Sha256, &mut p, &mut s)
            .block_on()
            .unwrap();
        let ak_public = p[..made.public_len].to_vec();
        let ak = tpm
            .load_ak(ek.key(), &ak_public, &s[..made.private_len])
            .block_on()
            .unwrap();
        let secret = b"keylet endorsement password test";
        let got = credential::round_trip(&mut tpm, ek.key(), ak, &ak_public, secret).unwrap();
        assert_eq!(&got[..], secret, "{alg:?}");
        tpm.flush(ak).block_on().unwrap();
        if ek.transient {
            tpm.flush(ek.handle).block_on().unwrap();
        }
    }
}
