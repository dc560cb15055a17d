//! TCG EK templates (L-1 RSA-2048, L-2 ECC P-256), AK templates, EK
//! certificate NV indices and persistent EK handles.

use tpm2_protocol::{
    TpmMarshal, TpmWriter,
    basic::{TpmUint16, TpmUint32},
    data::{
        Tpm2bDigest, Tpm2bEccParameter, Tpm2bPublic, Tpm2bPublicKeyRsa, TpmAlgId, TpmCc,
        TpmEccCurve, TpmaObject, TpmsEccParms, TpmsEccPoint, TpmsRsaParms, TpmsSchemeHash,
        TpmtEccScheme, TpmtKdfScheme, TpmtPublic, TpmtRsaScheme, TpmtSymDefObject, TpmuAsymScheme,
        TpmuPublicId, TpmuPublicParms, TpmuSymKeyBits, TpmuSymMode,
    },
};

use super::command::{CommandError, alg_id};
use crate::pcr::HashAlg;

/// "Policy A": the PolicySecret(TPM_RH_ENDORSEMENT) digest, SHA-256.
pub const POLICY_A_SHA256: [u8; 32] = [
    0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24,
    0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
];

/// EK attributes: fixedTPM, fixedParent, sensitiveDataOrigin,
/// adminWithPolicy, restricted, decrypt.
pub const EK_ATTRIBUTES: u32 = 0x0003_00B2;
/// TPMA_OBJECT.noDA: the object is exempt from dictionary-attack protection.
pub const OBJECT_NO_DA: u32 = 1 << 10;
/// AK attributes: fixedTPM, fixedParent, sensitiveDataOrigin, userWithAuth,
/// noDA, restricted, sign. The AK's authValue is empty, so dictionary-attack
/// protection guards nothing; with `noDA` its use never counts towards a
/// lockout (an unclean TPM shutdown after a quote does) and it keeps working
/// while the TPM is locked out (TPM 2.0 Part 1 §19.8). AKs made before keylet
/// set `noDA` lack it; `keylet doctor` reports them.
pub const AK_ATTRIBUTES: u32 = 0x0005_0072 | OBJECT_NO_DA;

/// TPM_RH_ENDORSEMENT, the EK's hierarchy.
pub const RH_ENDORSEMENT: u32 = 0x4000_000B;

/// The persistent handle of the RSA EK by TCG convention.
pub const EK_PERSISTENT_RSA: u32 = 0x8101_0001;
/// The persistent handle of the ECC EK by TCG convention.
pub const EK_PERSISTENT_ECC: u32 = 0x8101_0002;

/// EK certificate NV index, RSA-2048.
pub const EK_CERT_RSA_2048: u32 = 0x01C0_0002;
/// EK certificate NV index, ECC NIST P-256.
pub const EK_CERT_ECC_P256: u32 = 0x01C0_000A;
/// EK certificate NV index, ECC NIST P-384.
pub const EK_CERT_ECC_P384: u32 = 0x01C0_0016;
/// EK certificate NV index, ECC NIST P-521.
pub const EK_CERT_ECC_P521: u32 = 0x01C0_0018;
/// EK certificate NV index, ECC SM2 P-256.
pub const EK_CERT_ECC_SM2: u32 = 0x01C0_001A;
/// EK certificate NV index, RSA-3072.
pub const EK_CERT_RSA_3072: u32 = 0x01C0_001C;
/// EK certificate NV index, RSA-4096.
pub const EK_CERT_RSA_4096: u32 = 0x01C0_001E;
/// The first NV index of the optional EK certificate chain.
pub const EK_CHAIN_FIRST: u32 = 0x01C0_0100;
/// The last NV index of the optional EK certificate chain.
pub const EK_CHAIN_LAST: u32 = 0x01C0_01FF;

/// Whether `index` is in the EK certificate chain range.
#[must_use]
pub const fn is_ek_chain_index(index: u32) -> bool {
    index >= EK_CHAIN_FIRST && index <= EK_CHAIN_LAST
}

pub use crate::alg::KeyAlg;

impl KeyAlg {
    /// The EK certificate NV index for this key type.
    #[must_use]
    pub const fn ek_cert_index(self) -> u32 {
        match self {
            Self::Rsa2048 => EK_CERT_RSA_2048,
            Self::EccP256 => EK_CERT_ECC_P256,
        }
    }

    /// The persistent handle where hosts keep this EK by TCG convention
    /// (TCG TPM v2.0 Provisioning Guidance, section 7.8).
    #[must_use]
    pub const fn ek_persistent_handle(self) -> u32 {
        match self {
            Self::Rsa2048 => EK_PERSISTENT_RSA,
            Self::EccP256 => EK_PERSISTENT_ECC,
        }
    }

    /// The byte ranges of the key itself in this EK's marshalled
    /// TPM2B_PUBLIC of `len` bytes: the `unique` field's contents, which
    /// the template leaves zero and the TPM fills in. Everything else is
    /// the template's.
    const fn ek_unique_ranges(self, len: usize) -> [(usize, usize); 2] {
        match self {
            // TPM2B_PUBLIC_KEY_RSA: size, 256-byte modulus
            Self::Rsa2048 => [(len.saturating_sub(256), len), (len, len)],
            // TPMS_ECC_POINT: size, 32-byte x, size, 32-byte y
            Self::EccP256 => [
                (len.saturating_sub(64 + 2), len.saturating_sub(32 + 2)),
                (len.saturating_sub(32), len),
            ],
        }
    }
}

/// Whether `public` (a TPM2B_PUBLIC) is an EK made from this crate's TCG
/// template for `alg`: every byte equal to the template's except the key
/// in `unique` (type, nameAlg, attributes, Policy A, symmetric and
/// scheme parameters, key size, and the sizes of the key fields).
#[must_use]
pub fn ek_public_matches(alg: KeyAlg, public: &[u8]) -> bool {
    let mut buf = [0u8; 1024];
    let Ok(template) = ek_template(alg) else {
        return false;
    };
    let Ok(want) = marshal_public(&template, &mut buf) else {
        return false;
    };
    if public.len() != want.len() {
        return false;
    }
    let unique = alg.ek_unique_ranges(want.len());
    public
        .iter()
        .zip(want)
        .enumerate()
        .all(|(i, (got, want))| got == want || unique.iter().any(|&(a, b)| i >= a && i < b))
}

fn invalid(cc: TpmCc, what: &'static str) -> CommandError {
    CommandError::Invalid { cc, what }
}

fn aes128_cfb() -> TpmtSymDefObject {
    TpmtSymDefObject {
        algorithm: TpmAlgId::Aes,
        key_bits: TpmuSymKeyBits::Aes(TpmUint16::new(128)),
        mode: TpmuSymMode::Aes(TpmAlgId::Cfb),
    }
}

/// The TCG EK template: L-1 for RSA-2048, L-2 for ECC P-256 (Policy A,
/// AES-128-CFB, zero-filled unique).
///
/// # Errors
///
/// Never in practice; [`CommandError`] if a constant does not fit its field.
pub fn ek_template(alg: KeyAlg) -> Result<TpmtPublic, CommandError> {
    let cc = TpmCc::CreatePrimary;
    let auth_policy =
        Tpm2bDigest::try_from(&POLICY_A_SHA256[..]).map_err(|_| invalid(cc, "EK policy"))?;
    let (object_type, parameters, unique) = match alg {
        KeyAlg::Rsa2048 => (
            TpmAlgId::Rsa,
            TpmuPublicParms::Rsa(TpmsRsaParms {
                symmetric: aes128_cfb(),
                scheme: TpmtRsaScheme::default(),
                key_bits: TpmUint16::new(2048),
                exponent: TpmUint32::new(0),
            }),
            TpmuPublicId::Rsa(
                Tpm2bPublicKeyRsa::try_from(&[0u8; 256][..])
                    .map_err(|_| invalid(cc, "EK unique"))?,
            ),
        ),
        KeyAlg::EccP256 => {
            let zero = Tpm2bEccParameter::try_from(&[0u8; 32][..])
                .map_err(|_| invalid(cc, "EK unique"))?;
            (
                TpmAlgId::Ecc,
                TpmuPublicParms::Ecc(TpmsEccParms {
                    symmetric: aes128_cfb(),
                    scheme: TpmtEccScheme::default(),
                    curve_id: TpmEccCurve::NistP256,
                    kdf: TpmtKdfScheme::default(),
                }),
                TpmuPublicId::Ecc(TpmsEccPoint { x: zero, y: zero }),
            )
        }
    };
    Ok(TpmtPublic {
        object_type,
        name_alg: TpmAlgId::Sha256,
        object_attributes: TpmaObject::from_bits_truncate(EK_ATTRIBUTES),
        auth_policy,
        parameters,
        unique,
    })
}

/// An AK template: a restricted signing key, RSASSA (RSA-2048) or ECDSA
/// (P-256) signing with `hash` (the quoted bank's: the Keylime verifier
/// wants the quote signed with the bank's hash), empty authPolicy. `hash` is
/// also the nameAlg, except for SHA-1: an AK for the SHA-1 bank is named
/// with SHA-256 (no key keylet makes is named, or bound to its EK session,
/// with SHA-1).
///
/// # Errors
///
/// [`CommandError::Invalid`] if `hash` is unknown to the marshaller.
pub fn ak_template(alg: KeyAlg, hash: HashAlg) -> Result<TpmtPublic, CommandError> {
    let cc = TpmCc::Create;
    let hash_alg = alg_id(cc, hash)?;
    let scheme_hash = TpmuAsymScheme::Hash(TpmsSchemeHash { hash_alg });
    let name_alg = if hash == HashAlg::Sha1 {
        TpmAlgId::Sha256
    } else {
        hash_alg
    };
    let (object_type, parameters, unique) = match alg {
        KeyAlg::Rsa2048 => (
            TpmAlgId::Rsa,
            TpmuPublicParms::Rsa(TpmsRsaParms {
                symmetric: TpmtSymDefObject::default(),
                scheme: TpmtRsaScheme {
                    scheme: TpmAlgId::Rsassa,
                    details: scheme_hash,
                },
                key_bits: TpmUint16::new(2048),
                exponent: TpmUint32::new(0),
            }),
            TpmuPublicId::Rsa(Tpm2bPublicKeyRsa::default()),
        ),
        KeyAlg::EccP256 => (
            TpmAlgId::Ecc,
            TpmuPublicParms::Ecc(TpmsEccParms {
                symmetric: TpmtSymDefObject::default(),
                scheme: TpmtEccScheme {
                    scheme: TpmAlgId::Ecdsa,
                    details: scheme_hash,
                },
                curve_id: TpmEccCurve::NistP256,
                kdf: TpmtKdfScheme::default(),
            }),
            TpmuPublicId::Ecc(TpmsEccPoint::default()),
        ),
    };
    Ok(TpmtPublic {
        object_type,
        name_alg,
        object_attributes: TpmaObject::from_bits_truncate(AK_ATTRIBUTES),
        auth_policy: Tpm2bDigest::default(),
        parameters,
        unique,
    })
}

/// Marshals `public` as a TPM2B_PUBLIC into `buf`.
///
/// # Errors
///
/// [`CommandError::Marshal`] if `buf` is too small.
pub fn marshal_public<'b>(
    public: &TpmtPublic,
    buf: &'b mut [u8],
) -> Result<&'b [u8], CommandError> {
    let cc = TpmCc::CreatePrimary;
    let len = {
        let mut w = TpmWriter::new(buf);
        Tpm2bPublic::from(public.clone())
            .marshal(&mut w)
            .map_err(|error| CommandError::Marshal { cc, error })?;
        w.len()
    };
    buf.get(..len)
        .ok_or(invalid(cc, "public area larger than the buffer"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn hex(s: &str) -> [u8; 64] {
        let mut out = [0u8; 64];
        let s: heapless::String<256> = s.chars().filter(|c| !c.is_whitespace()).collect();
        for (i, o) in out.iter_mut().enumerate().take(s.len() / 2) {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    #[test]
    fn rsa_ek_template_matches_tcg_l1() {
        let mut buf = [0u8; 1024];
        let bytes = marshal_public(&ek_template(KeyAlg::Rsa2048).unwrap(), &mut buf).unwrap();
        assert_eq!(bytes.len(), 316);
        let prefix = "013a 0001 000b 000300b2 0020 \
            837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa \
            0006 0080 0043 0010 0800 00000000 0100";
        let want = hex(prefix);
        let n = prefix.chars().filter(|c| !c.is_whitespace()).count() / 2;
        assert_eq!(&bytes[..n], &want[..n]);
        assert!(bytes[n..].iter().all(|b| *b == 0));
        assert_eq!(bytes.len() - n, 256);
    }

    #[test]
    fn ecc_ek_template_is_l2() {
        let mut buf = [0u8; 1024];
        let bytes = marshal_public(&ek_template(KeyAlg::EccP256).unwrap(), &mut buf).unwrap();
        // type ECC, SHA-256, attributes, policy, AES-128-CFB, scheme NULL, P-256, kdf NULL, x, y
        assert_eq!(
            &bytes[2..10],
            &[0x00, 0x23, 0x00, 0x0b, 0x00, 0x03, 0x00, 0xb2]
        );
        let tail = &bytes[44..];
        assert_eq!(
            &tail[..12],
            &[
                0x00, 0x06, 0x00, 0x80, 0x00, 0x43, 0x00, 0x10, 0x00, 0x03, 0x00, 0x10
            ]
        );
        assert_eq!(tail.len(), 12 + 2 + 32 + 2 + 32);
    }

    #[test]
    fn an_ek_public_area_matches_its_template_whatever_its_key() {
        for alg in [KeyAlg::Rsa2048, KeyAlg::EccP256] {
            let mut buf = [0u8; 1024];
            let t = ek_template(alg).unwrap();
            let len = marshal_public(&t, &mut buf).unwrap().len();
            let area = &mut buf[..len];
            assert!(ek_public_matches(alg, area));
            // the key itself (the first and last bytes of unique) is the TPM's
            let first_key_byte = if alg == KeyAlg::Rsa2048 {
                len - 256
            } else {
                len - 66
            };
            area[first_key_byte] = 0xa5;
            area[len - 1] = 0x5a;
            assert!(ek_public_matches(alg, area), "{alg:?}: key bytes differ");
            let other = if alg == KeyAlg::Rsa2048 {
                KeyAlg::EccP256
            } else {
                KeyAlg::Rsa2048
            };
            assert!(!ek_public_matches(other, area), "{alg:?} as {other:?}");
            // attributes (userWithAuth added), Policy A, the size of a key field
            let key_size = if alg == KeyAlg::Rsa2048 {
                len - 257
            } else {
                len - 33
            };
            for at in [9, 12, key_size] {
                let mut changed = [0u8; 1024];
                changed[..len].copy_from_slice(area);
                changed[at] ^= 0x40;
                assert!(
                    !ek_public_matches(alg, &changed[..len]),
                    "{alg:?} byte {at}"
                );
            }
            assert!(!ek_public_matches(alg, &area[..len - 1]));
        }
    }

    #[test]
    fn rsa_ak_template_prefix() {
        let mut buf = [0u8; 1024];
        let t = ak_template(KeyAlg::Rsa2048, HashAlg::Sha256).unwrap();
        let bytes = marshal_public(&t, &mut buf).unwrap();
        let want = hex("0001 000b 00050472 0000 0010 0014 000b 0800 00000000 0000");
        assert_eq!(bytes.len(), 2 + 24);
        assert_eq!(&bytes[2..], &want[..24]);
        assert_eq!(
            AK_ATTRIBUTES & OBJECT_NO_DA,
            OBJECT_NO_DA,
            "the AK has noDA"
        );
        assert_eq!(
            EK_ATTRIBUTES & OBJECT_NO_DA,
            0,
            "the TCG EK template has no noDA"
        );
    }
}
