//! The TCG high-range EKs (RSA-3072 H-6, ECC P-384 H-3, ECC P-521 H-4)
//! against a real swtpm: keylet's template gives the key tpm2-tools'
//! `tpm2_createek` gives and, for P-384, the key in the EK certificate
//! swtpm_setup wrote at NV 0x01c00016; the EK takes its empty password
//! (userWithAuth), parents an AK, activates a credential, and is used from
//! its persistent TCG handle once the TPM proves it is the template's.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use keylet_core::tpm::transport::BlockOn as _;
use std::path::Path;
use std::process::Command;

use keylet_core::agent::{AtTcgHandle, BUFFER_SIZE, EkOrigin, Tpm};
use keylet_core::keylime::spki;
use keylet_core::pcr::HashAlg;
use keylet_core::public::read_tpm2b_public;
use keylet_core::tpm::capability::{
    self, CAP_HANDLES, HANDLES_LOADED_SESSION, HANDLES_POLICY_SESSION, HANDLES_TRANSIENT,
};
use keylet_core::tpm::command;
use keylet_core::tpm::template::{self, EkAuth, KeyAlg};
use keylet_core::tpm::transport::Transport;
use keylet_tests::credential;
use keylet_tests::swtpm::SwtpmTcp;

const HIGH_RANGE: [(KeyAlg, &str); 3] = [
    (KeyAlg::EccP384, "ecc384"),
    (KeyAlg::EccP521, "ecc521"),
    (KeyAlg::Rsa3072, "rsa3072"),
];

fn handles<T: Transport>(tpm: &mut Tpm<'_, T>, first: u32) -> Vec<u32> {
    let r = tpm
        .execute(|b| command::get_capability(b, CAP_HANDLES, first, 64))
        .block_on()
        .unwrap();
    capability::read(r.parameters).unwrap().handles().collect()
}

fn left_over<T: Transport>(tpm: &mut Tpm<'_, T>) -> Vec<u32> {
    [
        HANDLES_TRANSIENT,
        HANDLES_LOADED_SESSION,
        HANDLES_POLICY_SESSION,
    ]
    .into_iter()
    .flat_map(|first| handles(tpm, first))
    .collect()
}

/// Runs a tpm2-tools command against `swtpm`, then flushes what it left.
fn tpm2_tools(swtpm: &SwtpmTcp, dir: &Path, args: &[&str]) {
    for a in [args, &["tpm2_flushcontext", "-t"][..]] {
        let out = Command::new(a[0])
            .args(&a[1..])
            .current_dir(dir)
            .env(
                "TPM2TOOLS_TCTI",
                format!("swtpm:host=127.0.0.1,port={}", swtpm.port),
            )
            .output()
            .unwrap_or_else(|e| panic!("{}: {e} (install tpm2-tools)", a[0]));
        assert!(
            out.status.success(),
            "{a:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The EK keylet makes for `alg` (`ek_handle` unset), flushed again if transient.
fn keylet_ek(swtpm: &SwtpmTcp, alg: KeyAlg) -> (EkOrigin, u32, EkAuth, Vec<u8>) {
    let (mut c, mut r) = (vec![0; BUFFER_SIZE], vec![0; BUFFER_SIZE]);
    let mut tpm = Tpm::new(swtpm.transport().unwrap(), &mut c, &mut r);
    let mut public = vec![0u8; 1024];
    let ek = tpm.create_ek(alg, None, &mut public).block_on().unwrap();
    public.truncate(ek.public_len);
    if ek.transient {
        tpm.flush(ek.handle).block_on().unwrap();
    }
    assert_eq!(left_over(&mut tpm), Vec::<u32>::new());
    (ek.origin, ek.handle, ek.auth, public)
}

#[test]
fn tpm_high_range_eks_are_the_tcg_templates_and_serve_as_the_aks_parent() {
    let swtpm = SwtpmTcp::start().unwrap();
    let dir = std::env::temp_dir().join(format!("keylet-high-ek-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    for (alg, tools_name) in HIGH_RANGE {
        // Nothing at the TCG handle yet: created, with the empty password.
        let (origin, _, auth, public) = keylet_ek(&swtpm, alg);
        assert!(
            matches!(origin, EkOrigin::Created(AtTcgHandle::Nothing(_))),
            "{alg:?}: {origin:?}"
        );
        assert_eq!(auth, EkAuth::Password, "{alg:?}");
        assert!(template::ek_public_matches(alg, &public), "{alg:?}");
        for other in KeyAlg::ALL.into_iter().filter(|o| *o != alg) {
            assert!(
                !template::ek_public_matches(other, &public),
                "{alg:?} as {other:?}"
            );
        }

        // The same public area tpm2-tools makes from its copy of the TCG template.
        tpm2_tools(
            &swtpm,
            &dir,
            &[
                "tpm2_createek",
                "-G",
                tools_name,
                "-c",
                "ek.ctx",
                "-u",
                "ek.pub",
            ],
        );
        let tools = std::fs::read(dir.join("ek.pub")).unwrap();
        assert_eq!(
            public, tools,
            "{alg:?}: keylet's EK differs from tpm2_createek's"
        );

        // An AK of the EK's family under it, and a credential activated through it.
        let (mut c, mut r) = (vec![0; BUFFER_SIZE], vec![0; BUFFER_SIZE]);
        let mut tpm = Tpm::new(swtpm.transport().unwrap(), &mut c, &mut r);
        let mut ek_pub = vec![0u8; 1024];
        let ek = tpm.create_ek(alg, None, &mut ek_pub).block_on().unwrap();
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
        let ak_area = read_tpm2b_public(&ak_public).unwrap();
        assert_eq!(
            ak_area.object_type == 0x0001,
            alg.is_rsa(),
            "{alg:?}: AK family"
        );
        let secret = b"keylet high-range EK credential!";
        let got = credential::round_trip(&mut tpm, ek.key(), ak, &ak_public, secret).unwrap();
        assert_eq!(&got[..], secret, "{alg:?}");
        tpm.flush(ak).block_on().unwrap();
        tpm.flush(ek.handle).block_on().unwrap();
        assert_eq!(left_over(&mut tpm), Vec::<u32>::new(), "{alg:?}");
        drop(tpm);

        // Persisted at its TCG handle (as provisioning tools do): one
        // ReadPublic, verified through its SHA-384/512 qualified Name.
        let handle = format!("{:#010x}", alg.ek_persistent_handle());
        tpm2_tools(
            &swtpm,
            &dir,
            &["tpm2_createek", "-G", tools_name, "-c", &handle],
        );
        let (origin, at, auth, persisted) = keylet_ek(&swtpm, alg);
        assert_eq!(origin, EkOrigin::Persisted, "{alg:?}");
        assert_eq!(at, alg.ek_persistent_handle());
        assert_eq!(auth, EkAuth::Password);
        assert_eq!(persisted, public, "{alg:?}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn tpm_p384_ek_is_the_key_of_the_manufacturers_certificate() {
    // swtpm_setup --create-ek-cert writes a P-384 EK certificate at NV 0x01c00016.
    let swtpm = SwtpmTcp::start().unwrap();
    let (_, _, _, public) = keylet_ek(&swtpm, KeyAlg::EccP384);
    let key = read_tpm2b_public(&public).unwrap().key;
    let mut der = [0u8; spki::MAX_DER_LEN];
    let n = spki::der(&key, &mut der).unwrap();

    let (mut c, mut r) = (vec![0; BUFFER_SIZE], vec![0; BUFFER_SIZE]);
    let mut tpm = Tpm::new(swtpm.transport().unwrap(), &mut c, &mut r);
    let mut cert = vec![0u8; 4096];
    let len = tpm
        .read_ek_cert(KeyAlg::EccP384.ek_cert_index(), &mut cert)
        .block_on()
        .unwrap();
    let cert = &cert[..len];
    assert!(
        cert.windows(n).any(|w| w == &der[..n]),
        "the certificate at 0x01c00016 does not carry keylet's P-384 EK"
    );
}
