//! keylet's TPM layer against a real swtpm, over TCP and over the fd
//! transport (swtpm chardev on a socketpair).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use keylet_core::agent::{
    AgentError, BUFFER_SIZE, ClockRepair, EkHandle, EkOrigin, QuoteRequest, Tpm,
};
use keylet_core::keylime::{pcr_blob, quote_string};
use keylet_core::pcr::{HashAlg, PcrMask, extended_from_zero};
use keylet_core::public::{PublicKey, read_tpm2b_public};
use keylet_core::tpm::capability::{
    self, CAP_HANDLES, HANDLES_LOADED_SESSION, HANDLES_POLICY_SESSION, HANDLES_TRANSIENT,
};
use keylet_core::tpm::template::{self, EK_CERT_RSA_2048, EkAuth, KeyAlg};
use keylet_core::tpm::transport::BlockOn as _;
use keylet_core::tpm::transport::Transport;
use keylet_core::tpm::{Handle, command, command_keys, name, reader};
use keylet_core::verify;
use keylet_tests::swtpm::{SwtpmChardev, SwtpmTcp, rsa_ek_cert_file};

/// Counts TPM_RC_RETRY answers passing through.
struct RetryCounter<T> {
    inner: T,
    retries: u32,
}

impl<T: Transport + Send> Transport for RetryCounter<T> {
    type Error = T::Error;
    async fn transact(&mut self, c: &[u8], r: &mut [u8]) -> Result<usize, T::Error> {
        let n = self.inner.transact(c, r).await?;
        if r.get(6..10) == Some(&[0, 0, 0x09, 0x22]) {
            self.retries += 1;
        }
        Ok(n)
    }
}

fn bufs() -> (Vec<u8>, Vec<u8>) {
    (vec![0; BUFFER_SIZE], vec![0; BUFFER_SIZE])
}

fn handles<T: Transport>(tpm: &mut Tpm<'_, T>, first: u32) -> Vec<u32> {
    let r = tpm
        .execute(|b| command::get_capability(b, CAP_HANDLES, first, 64))
        .block_on()
        .unwrap();
    capability::read(r.parameters).unwrap().handles().collect()
}

fn no_leftovers<T: Transport>(tpm: &mut Tpm<'_, T>) -> bool {
    handles(tpm, HANDLES_TRANSIENT).is_empty()
        && handles(tpm, HANDLES_LOADED_SESSION).is_empty()
        && handles(tpm, HANDLES_POLICY_SESSION).is_empty()
}

struct Keys {
    ek: EkHandle,
    ak: Handle,
    ak_public: Vec<u8>,
}

fn make_keys<T: Transport>(tpm: &mut Tpm<'_, T>, ek_alg: KeyAlg, ak_alg: KeyAlg) -> Keys {
    make_keys_for(tpm, ek_alg, ak_alg, HashAlg::Sha256)
}

/// Keys whose AK signs quotes of the `bank` bank.
fn make_keys_for<T: Transport>(
    tpm: &mut Tpm<'_, T>,
    ek_alg: KeyAlg,
    ak_alg: KeyAlg,
    bank: HashAlg,
) -> Keys {
    let mut ek_pub = [0u8; 1024];
    let template = template::ek_template(ek_alg).unwrap();
    let (ek, _) = tpm
        .create_endorsement_primary(&template, &mut ek_pub)
        .block_on()
        .unwrap();
    let ek = EkHandle {
        handle: ek,
        auth: EkAuth::of_public(&ek_pub),
    };
    let (mut p, mut s) = ([0u8; 1024], [0u8; 2048]);
    let ak = tpm
        .create_ak(ek, ak_alg, bank, &mut p, &mut s)
        .block_on()
        .unwrap();
    let ak_public = p[..ak.public_len].to_vec();
    let ak_handle = tpm
        .load_ak(ek, &ak_public, &s[..ak.private_len])
        .block_on()
        .unwrap();
    Keys {
        ek,
        ak: ak_handle,
        ak_public,
    }
}

/// Runs the quote path and verifies the result like the Keylime verifier:
/// signature under the AK, nonce, PCR digest, and PCR 16 bound to the key.
fn quote_and_verify<T: Transport>(tpm: &mut Tpm<'_, T>, keys: &Keys) {
    quote_and_verify_bank(tpm, keys, HashAlg::Sha256);
}

/// [`quote_and_verify`] over the `bank` bank.
fn quote_and_verify_bank<T: Transport>(tpm: &mut Tpm<'_, T>, keys: &Keys, bank: HashAlg) {
    let pem = b"-----BEGIN PUBLIC KEY-----\nkeylet test key\n-----END PUBLIC KEY-----\n";
    let digest = bank.hash(pem);
    let nonce = b"tEsTnOnCe0123456789a";
    let mask = PcrMask::new(0x0040_0400).unwrap();
    let req = QuoteRequest {
        ak: keys.ak,
        nonce,
        bank,
        mask,
        data_digest: digest.as_bytes(),
    };
    let mut out = vec![0u8; 8192];
    let n = tpm.quote(&req, &mut out).block_on().unwrap();
    let text = std::str::from_utf8(&out[..n]).unwrap();
    assert!(text.starts_with('r'));
    let mut buf = vec![0u8; 8192];
    let parts = quote_string::decode(text, &mut buf).unwrap();
    let values = pcr_blob::decode(parts.pcr_blob).unwrap();
    let with16 = mask.with(16);
    assert_eq!(values.mask(), with16);
    verify::verify_quote(
        parts.attest,
        parts.signature,
        &values,
        &keys.ak_public,
        nonce,
        with16,
    )
    .unwrap();
    assert_eq!(values.get(16).unwrap(), &extended_from_zero(bank, pem));
    // The verifier wants the quote signed with the bank's hash.
    let sig_hash = u16::from_be_bytes([parts.signature[2], parts.signature[3]]);
    assert_eq!(sig_hash, bank.alg_id(), "signature hash");
    // A different nonce must not verify.
    assert!(
        verify::verify_quote(
            parts.attest,
            parts.signature,
            &values,
            &keys.ak_public,
            b"other",
            with16
        )
        .is_err()
    );
}

#[test]
fn tpm_get_random_over_tcp_and_fd() {
    let sw = SwtpmTcp::start().unwrap();
    let (mut c, mut r) = bufs();
    let mut tpm = Tpm::new(sw.transport().unwrap(), &mut c, &mut r);
    let mut a = [0u8; 100];
    let mut b = [0u8; 100];
    tpm.get_random(&mut a).block_on().unwrap();
    tpm.get_random(&mut b).block_on().unwrap();
    assert_ne!(a, b);
    assert!(a.iter().any(|x| *x != 0));

    let mut cd = SwtpmChardev::start().unwrap();
    let (mut c, mut r) = bufs();
    let mut tpm = Tpm::new(cd.take_transport().unwrap(), &mut c, &mut r);
    tpm.get_random(&mut a).block_on().unwrap();
    assert!(a.iter().any(|x| *x != 0));
}

#[test]
fn tpm_rsa_ek_matches_its_nv_certificate() {
    let sw = SwtpmTcp::start().unwrap();
    let (mut c, mut r) = bufs();
    let mut tpm = Tpm::new(sw.transport().unwrap(), &mut c, &mut r);
    let mut public = [0u8; 1024];
    let template = template::ek_template(KeyAlg::Rsa2048).unwrap();
    let (ek, public_len) = tpm
        .create_endorsement_primary(&template, &mut public)
        .block_on()
        .unwrap();
    let area = read_tpm2b_public(&public[..public_len]).unwrap();
    let PublicKey::Rsa { modulus, .. } = area.key else {
        panic!("EK is not RSA")
    };
    let modulus_hex: String = modulus.iter().map(|b| format!("{b:02X}")).collect();

    let mut cert = vec![0u8; 4096];
    let n = tpm
        .read_ek_cert(EK_CERT_RSA_2048, &mut cert)
        .block_on()
        .unwrap();
    assert_eq!(
        cert[..n],
        std::fs::read(rsa_ek_cert_file().unwrap()).unwrap()[..]
    );
    let path = std::env::temp_dir().join(format!("keylet-ekcert-{}.der", std::process::id()));
    std::fs::write(&path, &cert[..n]).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["x509", "-inform", "DER", "-noout", "-modulus", "-in"])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.trim(), format!("Modulus={modulus_hex}"));

    // The persistent EK swtpm_setup made is the same key, and keylet uses it.
    let mut persistent = [0u8; 1024];
    let p = tpm
        .create_ek(KeyAlg::Rsa2048, None, &mut persistent)
        .block_on()
        .unwrap();
    assert_eq!(p.origin, EkOrigin::Persisted);
    assert!(!p.transient);
    assert_eq!(persistent[..p.public_len], public[..public_len]);
    tpm.flush(ek).block_on().unwrap();
    assert!(no_leftovers(&mut tpm));
}

/// swtpm used to answer the first quote after start with TPM_RC_RETRY: the
/// first use of a DA-protected object makes the TPM record in NV that one
/// was used (so an unclean shutdown can count as a failure). keylet's AK has
/// noDA, so its quotes never start that write. (Retries themselves are
/// exercised by tests/tpm_faults.rs through the fault-injecting proxy.)
#[test]
fn tpm_first_quote_with_a_noda_ak_needs_no_retry_over_tcp() {
    let sw = SwtpmTcp::start().unwrap();
    let (mut c, mut r) = bufs();
    let t = RetryCounter {
        inner: sw.transport().unwrap(),
        retries: 0,
    };
    let mut tpm = Tpm::new(t, &mut c, &mut r);
    let keys = make_keys(&mut tpm, KeyAlg::EccP256, KeyAlg::EccP256);
    quote_and_verify(&mut tpm, &keys);
    assert_eq!(
        tpm.transport_mut().retries,
        0,
        "a quote with the noDA AK was answered TPM_RC_RETRY"
    );
    quote_and_verify(&mut tpm, &keys);
}

/// Quotes of the SHA-1 bank (hosts whose firmware enables only that bank):
/// signed with SHA-1 as the verifier wants, by an AK named with SHA-256.
#[test]
fn tpm_sha1_bank_quotes_verify_and_the_ak_is_named_with_sha256() {
    let swtpm = SwtpmTcp::start().unwrap();
    let (mut c, mut r) = bufs();
    let mut tpm = Tpm::new(swtpm.transport().unwrap(), &mut c, &mut r);
    for ak_alg in [KeyAlg::Rsa2048, KeyAlg::EccP256] {
        let keys = make_keys_for(&mut tpm, KeyAlg::Rsa2048, ak_alg, HashAlg::Sha1);
        // TPM2B_PUBLIC: size, type, then nameAlg.
        let name_alg = u16::from_be_bytes([keys.ak_public[4], keys.ak_public[5]]);
        assert_eq!(name_alg, HashAlg::Sha256.alg_id(), "{ak_alg:?} AK nameAlg");
        quote_and_verify_bank(&mut tpm, &keys, HashAlg::Sha1);
        tpm.flush(keys.ak).block_on().unwrap();
        tpm.flush(keys.ek.handle).block_on().unwrap();
    }
    assert!(no_leftovers(&mut tpm));
}

#[test]
fn tpm_rsa_ak_quote_over_fd_transport() {
    let mut cd = SwtpmChardev::start().unwrap();
    let (mut c, mut r) = bufs();
    let mut tpm = Tpm::new(cd.take_transport().unwrap(), &mut c, &mut r);
    let keys = make_keys(&mut tpm, KeyAlg::EccP256, KeyAlg::Rsa2048);
    quote_and_verify(&mut tpm, &keys);
    tpm.flush(keys.ak).block_on().unwrap();
    tpm.flush(keys.ek.handle).block_on().unwrap();
    assert!(no_leftovers(&mut tpm));
}

#[test]
fn tpm_activate_credential_round_trip() {
    let sw = SwtpmTcp::start().unwrap();
    let (mut c, mut r) = bufs();
    let mut tpm = Tpm::new(sw.transport().unwrap(), &mut c, &mut r);
    let keys = make_keys(&mut tpm, KeyAlg::Rsa2048, KeyAlg::EccP256);
    let ak_name = name::of_tpm2b_public(&keys.ak_public).unwrap();
    let secret = *b"keylet activation secret 32bytes";
    let (blob, enc) = {
        let r = tpm
            .execute(|b| {
                command_keys::make_credential(b, keys.ek.handle, &secret, ak_name.as_bytes())
            })
            .block_on()
            .unwrap();
        let (blob, enc) = reader::make_credential(r.parameters).unwrap();
        (blob.to_vec(), enc.to_vec())
    };
    let mut out = [0u8; 64];
    let n = tpm
        .activate_credential(keys.ak, keys.ek, &blob, &enc, &mut out)
        .block_on()
        .unwrap();
    assert_eq!(&out[..n], &secret);
    // A credential made for another Name is refused, and leaves no session.
    let mut wrong = ak_name.as_bytes().to_vec();
    wrong[5] ^= 1;
    let (blob, enc) = {
        let r = tpm
            .execute(|b| command_keys::make_credential(b, keys.ek.handle, &secret, &wrong))
            .block_on()
            .unwrap();
        let (blob, enc) = reader::make_credential(r.parameters).unwrap();
        (blob.to_vec(), enc.to_vec())
    };
    let err = tpm
        .activate_credential(keys.ak, keys.ek, &blob, &enc, &mut out)
        .block_on()
        .unwrap_err();
    assert!(matches!(err, AgentError::Response(_)), "{err}");
    assert!(handles(&mut tpm, HANDLES_LOADED_SESSION).is_empty());
    assert!(handles(&mut tpm, HANDLES_POLICY_SESSION).is_empty());
}

#[test]
fn tpm_error_paths_flush_everything() {
    let sw = SwtpmTcp::start().unwrap();
    let (mut c, mut r) = bufs();
    let mut tpm = Tpm::new(sw.transport().unwrap(), &mut c, &mut r);
    let mut ek_pub = [0u8; 1024];
    let ek = tpm
        .create_ek(KeyAlg::EccP256, None, &mut ek_pub)
        .block_on()
        .unwrap();

    // Create under a parent that does not exist: the policy session goes.
    let (mut p, mut s) = ([0u8; 1024], [0u8; 2048]);
    let err = tpm
        .create_ak(
            EkHandle {
                handle: 0x80FF_FFF0,
                auth: EkAuth::PolicyA,
            },
            KeyAlg::EccP256,
            HashAlg::Sha256,
            &mut p,
            &mut s,
        )
        .block_on()
        .unwrap_err();
    let rc = err.rc().expect("the TPM refuses a missing parent");
    assert!(!rc.is_success() && !rc.is_retryable(), "{rc}");
    // Output buffers too small: the TPM succeeded, the session still goes.
    let mut tiny = [0u8; 8];
    let err = tpm
        .create_ak(
            ek.key(),
            KeyAlg::EccP256,
            HashAlg::Sha256,
            &mut tiny,
            &mut s,
        )
        .block_on()
        .unwrap_err();
    assert!(matches!(err, AgentError::BufferTooSmall { .. }), "{err}");
    // Load of a damaged blob is refused; no session and no AK remain.
    let ak = tpm
        .create_ak(ek.key(), KeyAlg::EccP256, HashAlg::Sha256, &mut p, &mut s)
        .block_on()
        .unwrap();
    let mut bad = s[..ak.private_len].to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0x55;
    assert!(
        tpm.load_ak(ek.key(), &p[..ak.public_len], &bad)
            .block_on()
            .is_err()
    );
    // A transient EK whose public area does not fit is flushed again.
    let mut small = [0u8; 16];
    assert!(
        tpm.create_ek(KeyAlg::EccP256, None, &mut small)
            .block_on()
            .is_err()
    );

    assert_eq!(handles(&mut tpm, HANDLES_TRANSIENT), vec![ek.handle]);
    assert!(handles(&mut tpm, HANDLES_LOADED_SESSION).is_empty());
    assert!(handles(&mut tpm, HANDLES_POLICY_SESSION).is_empty());
    tpm.flush(ek.handle).block_on().unwrap();
}

#[test]
fn tpm_flush_leftovers_clears_a_crashed_clients_handles() {
    let sw = SwtpmTcp::start().unwrap();
    {
        let (mut c, mut r) = bufs();
        let mut tpm = Tpm::new(sw.transport().unwrap(), &mut c, &mut r);
        let mut pubk = [0u8; 1024];
        tpm.create_ek(KeyAlg::EccP256, None, &mut pubk)
            .block_on()
            .unwrap();
        tpm.start_ek_policy_session().block_on().unwrap();
        // dropped without flushing, like a crashed process
    }
    let (mut c, mut r) = bufs();
    let mut tpm = Tpm::new(sw.transport().unwrap(), &mut c, &mut r);
    assert!(!no_leftovers(&mut tpm));
    assert_eq!(tpm.flush_leftovers().block_on().unwrap(), 2);
    assert!(no_leftovers(&mut tpm));
}

#[test]
fn tpm_reads_all_24_pcrs_in_rounds() {
    let sw = SwtpmTcp::start().unwrap();
    let (mut c, mut r) = bufs();
    let mut tpm = Tpm::new(sw.transport().unwrap(), &mut c, &mut r);
    for bank in [HashAlg::Sha256, HashAlg::Sha1] {
        let v = tpm
            .read_pcrs(bank, PcrMask::new(0x00FF_FFFF).unwrap())
            .block_on()
            .unwrap();
        assert!(v.is_complete());
        assert_eq!(v.iter().count(), 24);
        // After Startup(CLEAR) PCR 0 is zero and PCR 23 is zero; not all equal to ff.
        assert!(v.get(0).unwrap().as_bytes().iter().all(|b| *b == 0));
    }
    // A bank swtpm does not have is an error, not a hang.
    let err = tpm
        .read_pcrs(HashAlg::Sha512, PcrMask::new(0x1).unwrap())
        .block_on()
        .unwrap_err();
    assert!(
        matches!(err, AgentError::PcrRead(_) | AgentError::Response(_)),
        "{err}"
    );
}

#[test]
fn tpm_clock_made_safe_after_an_unclean_reset() {
    let mut sw = SwtpmTcp::start().unwrap();
    let (mut c, mut r) = bufs();
    let before_crash = {
        let mut tpm = Tpm::new(sw.transport().unwrap(), &mut c, &mut r);
        let clock = tpm.read_clock().block_on().unwrap();
        assert!(
            clock.safe,
            "a freshly manufactured TPM has a safe clock: {clock:?}"
        );
        let again = tpm
            .make_clock_safe(command::Auth::EMPTY, 0)
            .block_on()
            .unwrap();
        assert!(
            matches!(again, ClockRepair::AlreadySafe(c) if c.safe && c.reset_count == clock.reset_count),
            "a safe clock is left alone: {again:?}"
        );
        clock
    };
    sw.kill_and_restart().unwrap();

    let mut tpm = Tpm::new(sw.transport().unwrap(), &mut c, &mut r);
    let keys = make_keys(&mut tpm, KeyAlg::EccP256, KeyAlg::EccP256);
    let unsafe_clock = tpm.read_clock().block_on().unwrap();
    assert!(
        !unsafe_clock.safe,
        "SIGKILL and restart leave the clock unsafe"
    );
    assert!(unsafe_clock.reset_count > before_crash.reset_count);
    // The quote path refuses what the verifier would fail for good.
    let digest = HashAlg::Sha256.hash(b"key");
    let req = QuoteRequest {
        ak: keys.ak,
        nonce: b"n0nce",
        bank: HashAlg::Sha256,
        mask: PcrMask::EMPTY,
        data_digest: digest.as_bytes(),
    };
    let mut out = vec![0u8; 8192];
    assert!(matches!(
        tpm.quote(&req, &mut out).block_on(),
        Err(AgentError::QuoteSelfCheck(verify::QuoteError::ClockNotSafe))
    ));

    let ClockRepair::Advanced { before, after } = tpm
        .make_clock_safe(command::Auth::EMPTY, 0)
        .block_on()
        .unwrap()
    else {
        panic!("an unsafe clock must be advanced");
    };
    assert!(!before.safe && after.safe);
    assert!(after.clock > before_crash.clock && after.clock > before.clock);
    assert!(
        after.clock - before.clock <= (1 << 22) + 1000,
        "{before:?} {after:?}"
    );
    assert_eq!(after.reset_count, before.reset_count);
    quote_and_verify(&mut tpm, &keys);
    tpm.flush(keys.ak).block_on().unwrap();
    tpm.flush(keys.ek.handle).block_on().unwrap();
}

/// swtpm saves its clock only at an orderly shutdown: after every unclean
/// reset the clock restarts from the same old value, however long it ran
/// since. A repair to "the next NV interval" alone would then repeat clock
/// values after the second power loss in a row, and the verifier fails such
/// a quote for good; the clock lease keeps the repaired clock above them.
#[test]
fn tpm_clock_lease_covers_two_unclean_resets_in_a_row() {
    use keylet_core::tpm::clock::{renewed_lease, safe_clock_target};
    let mut sw = SwtpmTcp::start().unwrap();
    let (mut c, mut r) = bufs();
    // swtpm listens before its own TPM2_Startup is done: one answered
    // command first, so that the kill below is an unclean reset and not a
    // kill before the TPM started (which restarts with a safe clock).
    Tpm::new(sw.transport().unwrap(), &mut c, &mut r)
        .read_clock()
        .block_on()
        .unwrap();
    sw.kill_and_restart().unwrap();
    let (lease, reported) = {
        let mut tpm = Tpm::new(sw.transport().unwrap(), &mut c, &mut r);
        let ClockRepair::Advanced { after, .. } = tpm
            .make_clock_safe(command::Auth::EMPTY, 0)
            .block_on()
            .unwrap()
        else {
            panic!("an unsafe clock must be advanced");
        };
        // What keylet persists after a repair, then a quote's clock later on.
        let lease = renewed_lease(after.clock);
        std::thread::sleep(std::time::Duration::from_millis(200));
        (lease, tpm.read_clock().block_on().unwrap())
    };
    sw.kill_and_restart().unwrap();
    let mut tpm = Tpm::new(sw.transport().unwrap(), &mut c, &mut r);
    let restored = tpm.read_clock().block_on().unwrap();
    assert!(!restored.safe);
    // The peer's behaviour that makes the lease necessary.
    assert!(
        safe_clock_target(restored.clock).unwrap() <= reported.clock,
        "swtpm saved its clock after all ({restored:?} after {reported:?}): the lease is still \
         right, but this test no longer shows why"
    );
    let ClockRepair::Advanced { after, .. } = tpm
        .make_clock_safe(command::Auth::EMPTY, lease)
        .block_on()
        .unwrap()
    else {
        panic!("an unsafe clock must be advanced");
    };
    assert!(after.safe && after.clock >= lease && after.clock > reported.clock);
}
