//! The EK persisted at its TCG handle, against a real swtpm: used when the
//! TPM proves it is the TCG template's EK (one ReadPublic, no key
//! generation), passed over with the reason otherwise. tpm2-tools puts the
//! keys at the handle, as an operator or a provisioning tool does.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use keylet_core::tpm::transport::BlockOn as _;
use std::path::Path;
use std::process::Command;

use keylet_core::agent::{AtTcgHandle, BUFFER_SIZE, Ek, EkOrigin, NotTheEk, Tpm};
use keylet_core::pcr::HashAlg;
use keylet_core::tpm::capability::{self, CAP_HANDLES, HANDLES_TRANSIENT};
use keylet_core::tpm::template::{self, EK_PERSISTENT_ECC, EK_PERSISTENT_RSA, KeyAlg};
use keylet_core::tpm::transport::Transport;
use keylet_core::tpm::{command, response};
use keylet_tests::swtpm::SwtpmTcp;

/// Records the command code of each command passing through.
struct Counting<T> {
    inner: T,
    codes: Vec<u32>,
}

impl<T: Transport + Send> Transport for Counting<T> {
    type Error = T::Error;
    async fn transact(&mut self, c: &[u8], r: &mut [u8]) -> Result<usize, T::Error> {
        self.codes.push(response::command_code(c));
        self.inner.transact(c, r).await
    }
}

/// Runs `f` on a fresh connection to `swtpm` (which serves one at a time)
/// and returns what it made and the command codes it sent.
fn with_tpm<R>(
    swtpm: &SwtpmTcp,
    f: impl FnOnce(&mut Tpm<'_, &mut Counting<keylet::tpm::TpmTransport>>) -> R,
) -> (R, Vec<u32>) {
    let mut t = Counting {
        inner: swtpm.transport().unwrap(),
        codes: Vec::new(),
    };
    let (mut cmd, mut rsp) = (vec![0; BUFFER_SIZE], vec![0; BUFFER_SIZE]);
    let r = {
        let mut tpm = Tpm::new(&mut t, &mut cmd, &mut rsp);
        let r = f(&mut tpm);
        let resp = tpm
            .execute(|b| command::get_capability(b, CAP_HANDLES, HANDLES_TRANSIENT, 64))
            .block_on()
            .unwrap();
        let left: Vec<u32> = capability::read(resp.parameters)
            .unwrap()
            .handles()
            .collect();
        assert!(left.is_empty(), "transient objects left: {left:x?}");
        r
    };
    t.codes.pop(); // the GetCapability above
    (r, t.codes)
}

/// The EK of `alg` as keylet makes it with `ek_handle` unset, its public
/// area, and (flushed again) the one TPM2_CreatePrimary makes from the template.
fn ek_and_template_ek(swtpm: &SwtpmTcp, alg: KeyAlg) -> (Ek, Vec<u8>, Vec<u8>, Vec<u32>) {
    let ((ek, public, created), codes) = with_tpm(swtpm, |tpm| {
        let mut public = vec![0u8; 1024];
        let ek = tpm.create_ek(alg, None, &mut public).block_on().unwrap();
        public.truncate(ek.public_len);
        if ek.transient {
            tpm.flush(ek.handle).block_on().unwrap();
        }
        let mut created = vec![0u8; 1024];
        let t = template::ek_template(alg).unwrap();
        let (h, n) = tpm
            .create_endorsement_primary(&t, &mut created)
            .block_on()
            .unwrap();
        tpm.flush(h).block_on().unwrap();
        created.truncate(n);
        (ek, public, created)
    });
    (ek, public, created, codes)
}

/// Runs a tpm2-tools command, then flushes the transient objects it left
/// (there is no resource manager in front of swtpm).
fn tpm2_tools(swtpm: &SwtpmTcp, dir: &Path, args: &[&str]) {
    tpm2_tool(swtpm, dir, args);
    tpm2_tool(swtpm, dir, &["tpm2_flushcontext", "-t"]);
}

fn tpm2_tool(swtpm: &SwtpmTcp, dir: &Path, args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .current_dir(dir)
        .env(
            "TPM2TOOLS_TCTI",
            format!("swtpm:host=127.0.0.1,port={}", swtpm.port),
        )
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (install tpm2-tools)", args[0]));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const READ_PUBLIC: u32 = 0x173;
const CREATE_PRIMARY: u32 = 0x131;
const FLUSH: u32 = 0x165;

#[test]
fn tpm_persisted_rsa_ek_is_used_only_when_the_tpm_proves_it_is_the_template_ek() {
    let swtpm = SwtpmTcp::start().unwrap();
    let dir = std::env::temp_dir().join(format!("keylet-persisted-ek-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // swtpm_setup persisted the RSA EK at 0x81010001: one ReadPublic, no key generation,
    // the same public area CreatePrimary makes (so a saved AK still loads under it).
    let (ek, public, created, codes) = ek_and_template_ek(&swtpm, KeyAlg::Rsa2048);
    assert_eq!(ek.origin, EkOrigin::Persisted);
    assert_eq!((ek.handle, ek.transient), (EK_PERSISTENT_RSA, false));
    assert_eq!(public, created);
    assert_eq!(&codes[..2], &[READ_PUBLIC, CREATE_PRIMARY], "{codes:x?}");

    // Nothing at the handle: created, and the object flushed.
    tpm2_tools(
        &swtpm,
        &dir,
        &["tpm2_evictcontrol", "-C", "o", "-c", "0x81010001"],
    );
    let (ek, public, created, codes) = ek_and_template_ek(&swtpm, KeyAlg::Rsa2048);
    assert!(
        matches!(ek.origin, EkOrigin::Created(AtTcgHandle::Nothing(rc)) if rc & 0x3f == 0x0b),
        "{:?}",
        ek.origin
    );
    assert!(ek.transient);
    assert_eq!(public, created);
    assert_eq!(
        &codes[..3],
        &[READ_PUBLIC, CREATE_PRIMARY, FLUSH],
        "{codes:x?}"
    );

    // An ECC EK at the RSA handle: another template, passed over.
    tpm2_tools(
        &swtpm,
        &dir,
        &["tpm2_createek", "-G", "ecc", "-c", "0x81010001"],
    );
    let (ek, public, created, _) = ek_and_template_ek(&swtpm, KeyAlg::Rsa2048);
    assert_eq!(
        ek.origin,
        EkOrigin::Created(AtTcgHandle::Other(NotTheEk::Template))
    );
    assert_eq!(public, created);
    tpm2_tools(
        &swtpm,
        &dir,
        &["tpm2_evictcontrol", "-C", "o", "-c", "0x81010001"],
    );

    // The template's public area exactly, but a primary of the owner hierarchy:
    // its qualified Name gives it away.
    std::fs::write(dir.join("policy_a"), template::POLICY_A_SHA256).unwrap();
    tpm2_tools(
        &swtpm,
        &dir,
        &[
            "tpm2_createprimary",
            "-C",
            "o",
            "-g",
            "sha256",
            "-G",
            "rsa2048:null:aes128cfb",
            "-a",
            "fixedtpm|fixedparent|sensitivedataorigin|adminwithpolicy|restricted|decrypt",
            "-L",
            "policy_a",
            "-c",
            "owner.ctx",
        ],
    );
    tpm2_tools(
        &swtpm,
        &dir,
        &[
            "tpm2_evictcontrol",
            "-C",
            "o",
            "-c",
            "owner.ctx",
            "0x81010001",
        ],
    );
    let (ek, _, _, _) = ek_and_template_ek(&swtpm, KeyAlg::Rsa2048);
    assert_eq!(
        ek.origin,
        EkOrigin::Created(AtTcgHandle::Other(NotTheEk::NotEndorsementPrimary))
    );

    // The TCG EK persisted again by tpm2-tools: used, and an AK made under the
    // transient EK loads under it.
    tpm2_tools(
        &swtpm,
        &dir,
        &["tpm2_evictcontrol", "-C", "o", "-c", "0x81010001"],
    );
    let ((ak_public, ak_private), _) = with_tpm(&swtpm, |tpm| {
        let mut public = vec![0u8; 1024];
        let ek = tpm
            .create_ek(KeyAlg::Rsa2048, None, &mut public)
            .block_on()
            .unwrap();
        assert!(ek.transient);
        let (mut p, mut s) = (vec![0u8; 1024], vec![0u8; 2048]);
        let ak = tpm
            .create_ak(ek.key(), KeyAlg::Rsa2048, HashAlg::Sha256, &mut p, &mut s)
            .block_on()
            .unwrap();
        tpm.flush(ek.handle).block_on().unwrap();
        p.truncate(ak.public_len);
        s.truncate(ak.private_len);
        (p, s)
    });
    tpm2_tools(
        &swtpm,
        &dir,
        &["tpm2_createek", "-G", "rsa", "-c", "0x81010001"],
    );
    let (origin, _) = with_tpm(&swtpm, |tpm| {
        let mut public = vec![0u8; 1024];
        let ek = tpm
            .create_ek(KeyAlg::Rsa2048, None, &mut public)
            .block_on()
            .unwrap();
        let ak = tpm
            .load_ak(ek.key(), &ak_public, &ak_private)
            .block_on()
            .unwrap();
        tpm.flush(ak).block_on().unwrap();
        ek.origin
    });
    assert_eq!(origin, EkOrigin::Persisted);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tpm_persisted_ecc_ek_at_its_own_tcg_handle() {
    let swtpm = SwtpmTcp::start().unwrap();
    let dir = std::env::temp_dir().join(format!("keylet-persisted-ecc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ek, _, _, _) = ek_and_template_ek(&swtpm, KeyAlg::EccP256);
    assert!(
        matches!(ek.origin, EkOrigin::Created(AtTcgHandle::Nothing(_))),
        "{:?}",
        ek.origin
    );
    tpm2_tools(
        &swtpm,
        &dir,
        &["tpm2_createek", "-G", "ecc", "-c", "0x81010002"],
    );
    let (ek, public, created, codes) = ek_and_template_ek(&swtpm, KeyAlg::EccP256);
    assert_eq!(ek.origin, EkOrigin::Persisted);
    assert_eq!((ek.handle, ek.transient), (EK_PERSISTENT_ECC, false));
    assert_eq!(public, created);
    assert_eq!(codes[0], READ_PUBLIC);
    let _ = std::fs::remove_dir_all(&dir);
}
