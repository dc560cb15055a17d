//! TCG EK templates (TCG EK Credential Profile 2.5, annex B): the low range
//! L-1 (RSA-2048) and L-2 (ECC P-256), the high range H-3 (P-384), H-4
//! (P-521) and H-6 (RSA-3072); their EK certificate NV indices, persistent
//! handles and authorization; and the check that a public area is an EK
//! made from one of them.

use tpm2_protocol::{
    basic::{TpmUint16, TpmUint32},
    data::{
        Tpm2bDigest, Tpm2bEccParameter, Tpm2bPublicKeyRsa, TpmAlgId, TpmCc, TpmEccCurve,
        TpmaObject, TpmsEccParms, TpmsEccPoint, TpmsRsaParms, TpmtEccScheme, TpmtKdfScheme,
        TpmtPublic, TpmtRsaScheme, TpmtSymDefObject, TpmuPublicId, TpmuPublicParms, TpmuSymKeyBits,
        TpmuSymMode,
    },
};

use super::command::CommandError;
use super::template::{invalid, marshal_public};

/// "Policy A": the PolicySecret(TPM_RH_ENDORSEMENT) digest, SHA-256.
pub const POLICY_A_SHA256: [u8; 32] = [
    0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24,
    0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
];

/// "Policy B", SHA-384: the high-range EKs' authPolicy.
pub const POLICY_B_SHA384: [u8; 48] = [
    0xb2, 0x6e, 0x7d, 0x28, 0xd1, 0x1a, 0x50, 0xbc, 0x53, 0xd8, 0x82, 0xbc, 0xf5, 0xfd, 0x3a, 0x1a,
    0x07, 0x41, 0x48, 0xbb, 0x35, 0xd3, 0xb4, 0xe4, 0xcb, 0x1c, 0x0a, 0xd9, 0xbd, 0xe4, 0x19, 0xca,
    0xcb, 0x47, 0xba, 0x09, 0x69, 0x96, 0x46, 0x15, 0x0f, 0x9f, 0xc0, 0x00, 0xf3, 0xf8, 0x0e, 0x12,
];

/// "Policy B", SHA-512: the P-521 EK's authPolicy.
pub const POLICY_B_SHA512: [u8; 64] = [
    0xb8, 0x22, 0x1c, 0xa6, 0x9e, 0x85, 0x50, 0xa4, 0x91, 0x4d, 0xe3, 0xfa, 0xa6, 0xa1, 0x8c, 0x07,
    0x2c, 0xc0, 0x12, 0x08, 0x07, 0x3a, 0x92, 0x8d, 0x5d, 0x66, 0xd5, 0x9e, 0xf7, 0x9e, 0x49, 0xa4,
    0x29, 0xc4, 0x1a, 0x6b, 0x26, 0x95, 0x71, 0xd5, 0x7e, 0xdb, 0x25, 0xfb, 0xdb, 0x18, 0x38, 0x42,
    0x56, 0x08, 0xb4, 0x13, 0xcd, 0x61, 0x6a, 0x5f, 0x6d, 0xb5, 0xb6, 0x07, 0x1a, 0xf9, 0x9b, 0xea,
];

/// EK attributes: fixedTPM, fixedParent, sensitiveDataOrigin,
/// adminWithPolicy, restricted, decrypt.
pub const EK_ATTRIBUTES: u32 = 0x0003_00B2;
/// TPMA_OBJECT.userWithAuth: the object's authValue authorizes the USER
/// role. The high-range EK templates set it (their authValue is empty), so
/// the EK is used with an empty password instead of a policy session.
pub const OBJECT_USER_WITH_AUTH: u32 = 1 << 6;
/// High-range EK attributes: [`EK_ATTRIBUTES`] and userWithAuth.
pub const EK_ATTRIBUTES_HIGH: u32 = EK_ATTRIBUTES | OBJECT_USER_WITH_AUTH;

/// The persistent handle of the RSA EK by TCG convention.
pub const EK_PERSISTENT_RSA: u32 = 0x8101_0001;
/// The persistent handle of the ECC EK by TCG convention.
pub const EK_PERSISTENT_ECC: u32 = 0x8101_0002;
/// The persistent handle of the ECC P-384 EK (template H-3).
pub const EK_PERSISTENT_ECC_P384: u32 = 0x8101_0005;
/// The persistent handle of the ECC P-521 EK (template H-4).
pub const EK_PERSISTENT_ECC_P521: u32 = 0x8101_0006;
/// The persistent handle of the RSA-3072 EK (template H-6).
pub const EK_PERSISTENT_RSA_3072: u32 = 0x8101_0008;

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
            Self::Rsa3072 => EK_CERT_RSA_3072,
            Self::EccP256 => EK_CERT_ECC_P256,
            Self::EccP384 => EK_CERT_ECC_P384,
            Self::EccP521 => EK_CERT_ECC_P521,
        }
    }

    /// The persistent handle where hosts keep this EK by TCG convention
    /// (TCG TPM v2.0 Provisioning Guidance, section 7.8, and the EK
    /// Credential Profile's high-range handles).
    #[must_use]
    pub const fn ek_persistent_handle(self) -> u32 {
        match self {
            Self::Rsa2048 => EK_PERSISTENT_RSA,
            Self::Rsa3072 => EK_PERSISTENT_RSA_3072,
            Self::EccP256 => EK_PERSISTENT_ECC,
            Self::EccP384 => EK_PERSISTENT_ECC_P384,
            Self::EccP521 => EK_PERSISTENT_ECC_P521,
        }
    }

    /// Whether the EK template is one of the high range (userWithAuth,
    /// Policy B, AES-256, an empty `unique`).
    #[must_use]
    pub const fn is_high_range(self) -> bool {
        !matches!(self, Self::Rsa2048 | Self::EccP256)
    }

    /// The RSA modulus length, or the ECC coordinate length, in bytes.
    #[must_use]
    pub const fn key_bytes(self) -> usize {
        match self {
            Self::Rsa2048 => 256,
            Self::Rsa3072 => 384,
            Self::EccP256 => 32,
            Self::EccP384 => 48,
            Self::EccP521 => 66,
        }
    }

    /// The byte ranges of the key itself in this EK's marshalled
    /// TPM2B_PUBLIC of `len` bytes: the `unique` field's contents, which
    /// the TPM fills in. Everything else is the template's.
    const fn ek_unique_ranges(self, len: usize) -> [(usize, usize); 2] {
        let n = self.key_bytes();
        if self.is_rsa() {
            // TPM2B_PUBLIC_KEY_RSA: size, modulus
            [(len.saturating_sub(n), len), (len, len)]
        } else {
            // TPMS_ECC_POINT: size, x, size, y
            [
                (
                    len.saturating_sub(n.saturating_mul(2).saturating_add(2)),
                    len.saturating_sub(n.saturating_add(2)),
                ),
                (len.saturating_sub(n), len),
            ]
        }
    }
}

/// How the EK authorizes its USER role (as the AK's parent and in
/// TPM2_ActivateCredential).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EkAuth {
    /// A policy session satisfying Policy A (PolicySecret of the
    /// endorsement hierarchy): the low-range templates.
    PolicyA,
    /// The EK's empty authValue: objects with userWithAuth, as the
    /// high-range templates are.
    Password,
}

impl EkAuth {
    /// The authorization an EK with these TPMA_OBJECT attributes takes.
    #[must_use]
    pub const fn of_attributes(attributes: u32) -> Self {
        if attributes & OBJECT_USER_WITH_AUTH != 0 {
            Self::Password
        } else {
            Self::PolicyA
        }
    }

    /// The authorization of the EK in a marshalled TPM2B_PUBLIC (its
    /// objectAttributes at bytes 6..10); Policy A if it is too short.
    #[must_use]
    pub fn of_public(public: &[u8]) -> Self {
        public
            .get(6..10)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or(Self::PolicyA, |b| {
                Self::of_attributes(u32::from_be_bytes(b))
            })
    }
}

/// Whether `public` (a TPM2B_PUBLIC) is an EK made from this crate's TCG
/// template for `alg`: every byte equal to the template's except the key
/// in `unique` (type, nameAlg, attributes, Policy A, symmetric and
/// scheme parameters, key size, and the sizes of the key fields).
#[must_use]
pub fn ek_public_matches(alg: KeyAlg, public: &[u8]) -> bool {
    let mut buf = [0u8; 1024];
    let Ok(shape) = ek_public(alg, true) else {
        return false;
    };
    let Ok(want) = marshal_public(&shape, &mut buf) else {
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

fn aes_cfb(bits: u16) -> TpmtSymDefObject {
    TpmtSymDefObject {
        algorithm: TpmAlgId::Aes,
        key_bits: TpmuSymKeyBits::Aes(TpmUint16::new(bits)),
        mode: TpmuSymMode::Aes(TpmAlgId::Cfb),
    }
}

/// The TCG EK template for `alg`: L-1 (RSA-2048) and L-2 (P-256) with
/// Policy A, AES-128-CFB and a zero-filled `unique`; H-6 (RSA-3072, SHA-384),
/// H-3 (P-384, SHA-384) and H-4 (P-521, SHA-512) with userWithAuth, Policy B,
/// AES-256-CFB and an empty `unique`.
///
/// # Errors
///
/// Never in practice; [`CommandError`] if a constant does not fit its field.
pub fn ek_template(alg: KeyAlg) -> Result<TpmtPublic, CommandError> {
    ek_public(alg, false)
}

/// The EK template, or with `full_unique` its public area's shape: the
/// `unique` field zero-filled to the key's length, as the TPM returns it.
fn ek_public(alg: KeyAlg, full_unique: bool) -> Result<TpmtPublic, CommandError> {
    let cc = TpmCc::CreatePrimary;
    let policy: &[u8] = match alg {
        KeyAlg::Rsa2048 | KeyAlg::EccP256 => &POLICY_A_SHA256,
        KeyAlg::Rsa3072 | KeyAlg::EccP384 => &POLICY_B_SHA384,
        KeyAlg::EccP521 => &POLICY_B_SHA512,
    };
    let name_alg = match alg {
        KeyAlg::Rsa2048 | KeyAlg::EccP256 => TpmAlgId::Sha256,
        KeyAlg::Rsa3072 | KeyAlg::EccP384 => TpmAlgId::Sha384,
        KeyAlg::EccP521 => TpmAlgId::Sha512,
    };
    let (attributes, sym_bits) = if alg.is_high_range() {
        (EK_ATTRIBUTES_HIGH, 256)
    } else {
        (EK_ATTRIBUTES, 128)
    };
    let auth_policy = Tpm2bDigest::try_from(policy).map_err(|_| invalid(cc, "EK policy"))?;
    let zeros = [0u8; 512];
    let unique_len = if full_unique || !alg.is_high_range() {
        alg.key_bytes()
    } else {
        0
    };
    let unique = zeros.get(..unique_len).ok_or(invalid(cc, "EK unique"))?;
    let (object_type, parameters, unique) = if alg.is_rsa() {
        let bits = u16::try_from(alg.key_bytes().saturating_mul(8))
            .map_err(|_| invalid(cc, "EK key bits"))?;
        (
            TpmAlgId::Rsa,
            TpmuPublicParms::Rsa(TpmsRsaParms {
                symmetric: aes_cfb(sym_bits),
                scheme: TpmtRsaScheme::default(),
                key_bits: TpmUint16::new(bits),
                exponent: TpmUint32::new(0),
            }),
            TpmuPublicId::Rsa(
                Tpm2bPublicKeyRsa::try_from(unique).map_err(|_| invalid(cc, "EK unique"))?,
            ),
        )
    } else {
        let coordinate =
            Tpm2bEccParameter::try_from(unique).map_err(|_| invalid(cc, "EK unique"))?;
        let curve_id = match alg {
            KeyAlg::EccP384 => TpmEccCurve::NistP384,
            KeyAlg::EccP521 => TpmEccCurve::NistP521,
            _ => TpmEccCurve::NistP256,
        };
        (
            TpmAlgId::Ecc,
            TpmuPublicParms::Ecc(TpmsEccParms {
                symmetric: aes_cfb(sym_bits),
                scheme: TpmtEccScheme::default(),
                curve_id,
                kdf: TpmtKdfScheme::default(),
            }),
            TpmuPublicId::Ecc(TpmsEccPoint {
                x: coordinate,
                y: coordinate,
            }),
        )
    };
    Ok(TpmtPublic {
        object_type,
        name_alg,
        object_attributes: TpmaObject::from_bits_truncate(attributes),
        auth_policy,
        parameters,
        unique,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    use crate::keylime::hex::test_bytes as hex;

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
    fn high_range_ek_templates_are_h3_h4_h6_with_an_empty_unique() {
        // type, nameAlg, attributes (userWithAuth), Policy B size, ..., AES-256-CFB, NULL scheme
        let cases: [(KeyAlg, &str, &str); 3] = [
            (
                KeyAlg::EccP384,
                "0023 000c 000300f2 0030",
                "0006 0100 0043 0010 0004 0010 0000 0000",
            ),
            (
                KeyAlg::EccP521,
                "0023 000d 000300f2 0040",
                "0006 0100 0043 0010 0005 0010 0000 0000",
            ),
            (
                KeyAlg::Rsa3072,
                "0001 000c 000300f2 0030",
                "0006 0100 0043 0010 0c00 00000000 0000",
            ),
        ];
        for (alg, head, tail) in cases {
            let mut buf = [0u8; 1024];
            let bytes = marshal_public(&ek_template(alg).unwrap(), &mut buf).unwrap();
            let n = head.chars().filter(|c| !c.is_whitespace()).count() / 2;
            assert_eq!(&bytes[2..2 + n], &hex(head)[..n], "{alg:?}");
            let policy: &[u8] = if alg == KeyAlg::EccP521 {
                &POLICY_B_SHA512
            } else {
                &POLICY_B_SHA384
            };
            assert_eq!(&bytes[2 + n..2 + n + policy.len()], policy, "{alg:?}");
            let m = tail.chars().filter(|c| !c.is_whitespace()).count() / 2;
            assert_eq!(&bytes[2 + n + policy.len()..], &hex(tail)[..m], "{alg:?}");
            assert!(alg.is_high_range());
            assert_eq!(
                EkAuth::of_public(bytes),
                EkAuth::Password,
                "{alg:?} takes its password"
            );
        }
        for alg in [KeyAlg::Rsa2048, KeyAlg::EccP256] {
            let mut buf = [0u8; 1024];
            let bytes = marshal_public(&ek_template(alg).unwrap(), &mut buf).unwrap();
            assert_eq!(EkAuth::of_public(bytes), EkAuth::PolicyA, "{alg:?}");
        }
        assert_eq!(EkAuth::of_public(&[0, 1]), EkAuth::PolicyA);
    }

    #[test]
    fn an_ek_public_area_matches_its_own_template_whatever_its_key() {
        for alg in KeyAlg::ALL {
            let mut buf = [0u8; 1024];
            let len = marshal_public(&ek_public(alg, true).unwrap(), &mut buf)
                .unwrap()
                .len();
            let area = &mut buf[..len];
            assert!(ek_public_matches(alg, area), "{alg:?}");
            // the key itself (the first and last bytes of unique) is the TPM's
            let n = alg.key_bytes();
            let first_key_byte = if alg.is_rsa() {
                len - n
            } else {
                len - 2 * n - 2
            };
            area[first_key_byte] = 0xa5;
            area[len - 1] = 0x5a;
            assert!(ek_public_matches(alg, area), "{alg:?}: key bytes differ");
            for other in KeyAlg::ALL.into_iter().filter(|o| *o != alg) {
                assert!(!ek_public_matches(other, area), "{alg:?} as {other:?}");
            }
            // nameAlg, attributes (userWithAuth), the policy's first byte, the
            // size of the (last) key field
            for at in [5, 9, 12, len - n - 1] {
                let mut changed = [0u8; 1024];
                changed[..len].copy_from_slice(area);
                changed[at] ^= 0x40;
                assert!(
                    !ek_public_matches(alg, &changed[..len]),
                    "{alg:?} byte {at}"
                );
            }
            assert!(
                !ek_public_matches(alg, &area[..len - 1]),
                "{alg:?} cut short"
            );
        }
    }
}
