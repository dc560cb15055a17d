//! The integrity quote at the floor, against a real swtpm: the TPM commands
//! each quote sends, and that every quote carries PCR 16 bound to the payload
//! key exactly as the Keylime verifier checks it (H(0^n || H(key PEM)) in the
//! quoted, signed PCR values), whether keylet extended it or found it so.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use keylet_core::agent::{BUFFER_SIZE, EkHandle, QuoteRequest, Tpm};
use keylet_core::keylime::{pcr_blob, quote_string};
use keylet_core::pcr::{HashAlg, PcrMask, extended_from_zero};
use keylet_core::tpm::template::EkAuth;
use keylet_core::tpm::transport::BlockOn as _;
use keylet_core::tpm::transport::Transport;
use keylet_core::tpm::{command, response, template};
use keylet_core::verify;
use keylet_tests::swtpm::SwtpmTcp;

const READ: u32 = 0x17E;
const RESET: u32 = 0x13D;
const EXTEND: u32 = 0x182;
const QUOTE: u32 = 0x158;

const PEM: &[u8] = b"-----BEGIN PUBLIC KEY-----\nkeylet floor key\n-----END PUBLIC KEY-----\n";

/// Records the command codes keylet sends; with `meddle`, extends PCR 16
/// behind keylet's back just before its next Quote (another process on the
/// TPM), once.
struct Watch<T> {
    inner: T,
    codes: Vec<u32>,
    meddle: bool,
}

impl<T: Transport + Send> Transport for Watch<T> {
    type Error = T::Error;
    async fn transact(&mut self, c: &[u8], r: &mut [u8]) -> Result<usize, T::Error> {
        let cc = response::command_code(c);
        if cc == QUOTE && self.meddle {
            self.meddle = false;
            let mut buf = [0u8; 256];
            let other = HashAlg::Sha256.hash(b"someone else");
            let extend = command::pcr_extend(&mut buf, 16, HashAlg::Sha256, other.as_bytes())
                .unwrap()
                .to_vec();
            let mut rsp = [0u8; 256];
            self.inner.transact(&extend, &mut rsp).await?;
            assert_eq!(&rsp[6..10], &[0; 4], "the meddling extend succeeded");
        }
        self.codes.push(cc);
        self.inner.transact(c, r).await
    }
}

/// One integrity quote (PCRs 10, 22 and 16), checked like the verifier:
/// signature under the AK, nonce, pcrDigest over the values sent, and PCR 16
/// bound to the key. Returns the TPM commands it took.
fn quote(
    tpm: &mut Tpm<'_, &mut Watch<keylet::tpm::TpmTransport>>,
    ak: u32,
    ak_public: &[u8],
) -> Vec<u32> {
    let digest = HashAlg::Sha256.hash(PEM);
    let nonce = b"fLoOrNoNcE0123456789";
    let mask = PcrMask::new(0x0040_0400).unwrap();
    let req = QuoteRequest {
        ak,
        nonce,
        bank: HashAlg::Sha256,
        mask,
        data_digest: digest.as_bytes(),
    };
    tpm.transport_mut().codes.clear();
    let mut out = vec![0u8; 8192];
    let n = tpm.quote(&req, &mut out).block_on().unwrap();
    let codes = std::mem::take(&mut tpm.transport_mut().codes);
    let text = std::str::from_utf8(&out[..n]).unwrap();
    let mut buf = vec![0u8; 8192];
    let parts = quote_string::decode(text, &mut buf).unwrap();
    let values = pcr_blob::decode(parts.pcr_blob).unwrap();
    let with16 = mask.with(16);
    verify::verify_quote(
        parts.attest,
        parts.signature,
        &values,
        ak_public,
        nonce,
        with16,
    )
    .unwrap();
    assert_eq!(
        values.get(16).unwrap(),
        &extended_from_zero(HashAlg::Sha256, PEM)
    );
    codes
}

#[test]
fn tpm_integrity_quotes_reset_and_extend_pcr16_only_when_it_lacks_the_binding() {
    let sw = SwtpmTcp::start().unwrap();
    let mut watch = Watch {
        inner: sw.transport().unwrap(),
        codes: Vec::new(),
        meddle: false,
    };
    let (mut c, mut r) = (vec![0u8; BUFFER_SIZE], vec![0u8; BUFFER_SIZE]);
    let mut tpm = Tpm::new(&mut watch, &mut c, &mut r);
    let mut ek_pub = [0u8; 1024];
    let t = template::ek_template(template::KeyAlg::Rsa2048).unwrap();
    let (ek, _) = tpm
        .create_endorsement_primary(&t, &mut ek_pub)
        .block_on()
        .unwrap();
    let ek = EkHandle {
        handle: ek,
        auth: EkAuth::of_public(&ek_pub),
    };
    let (mut p, mut s) = ([0u8; 1024], [0u8; 2048]);
    let made = tpm
        .create_ak(
            ek,
            template::KeyAlg::Rsa2048,
            HashAlg::Sha256,
            &mut p,
            &mut s,
        )
        .block_on()
        .unwrap();
    let ak_public = p[..made.public_len].to_vec();
    let ak = tpm
        .load_ak(ek, &ak_public, &s[..made.private_len])
        .block_on()
        .unwrap();
    tpm.flush(ek.handle).block_on().unwrap();

    // After a reboot PCR 16 is zero: bind it (4 commands, as before).
    assert_eq!(
        quote(&mut tpm, ak, &ak_public),
        [READ, RESET, EXTEND, QUOTE]
    );
    // It holds the binding now: the floor, PCR_Read and Quote.
    for _ in 0..3 {
        assert_eq!(quote(&mut tpm, ak, &ak_public), [READ, QUOTE]);
    }
    // Someone extended PCR 16: bound again.
    let other = HashAlg::Sha256.hash(b"someone else");
    tpm.execute(|b| command::pcr_extend(b, 16, HashAlg::Sha256, other.as_bytes()))
        .block_on()
        .unwrap();
    assert_eq!(
        quote(&mut tpm, ak, &ak_public),
        [READ, RESET, EXTEND, QUOTE]
    );
    assert_eq!(quote(&mut tpm, ak, &ak_public), [READ, QUOTE]);
    // PCR 16 changed between the read and the quote: the self-check against the
    // signed pcrDigest refuses that quote, and the next attempt binds again.
    tpm.transport_mut().meddle = true;
    assert_eq!(
        quote(&mut tpm, ak, &ak_public),
        [READ, QUOTE, READ, RESET, EXTEND, QUOTE]
    );
    tpm.flush(ak).block_on().unwrap();
}
