//! The TCG device identity templates ("TPM 2.0 Keys for Device Identity and
//! Attestation"): the IAK and IDevID as primary keys of the endorsement
//! hierarchy, re-created from their template (H-1 RSA-2048 / SHA-256, H-2 ECC
//! NIST P-256 / SHA-256, H-3 ECC NIST P-384 / SHA-384, H-4 ECC NIST P-521 /
//! SHA-512; H-5, SM2 / SM3-256, is refused: see [`devid_template`]).
//!
//! The IAK is a restricted signing key (RSASSA-PSS or ECDSA with the name
//! hash, unique "IAK"); the IDevID an unrestricted signing key (RSA with a
//! NULL scheme, or ECDSA with the name hash, unique "IDEVID"). Both have
//! userWithAuth and adminWithPolicy with the TCG policy digest of the name
//! hash, an empty authValue, no symmetric algorithm. The same bytes as the reference Keylime agent uses, so
//! a certificate issued for either agent's key fits keylet's.

use tpm2_protocol::{
    basic::{TpmUint16, TpmUint32},
    data::{
        Tpm2bDigest, Tpm2bEccParameter, Tpm2bPublicKeyRsa, TpmAlgId, TpmCc, TpmEccCurve,
        TpmaObject, TpmsEccParms, TpmsEccPoint, TpmsRsaParms, TpmsSchemeHash, TpmtEccScheme,
        TpmtKdfScheme, TpmtPublic, TpmtRsaScheme, TpmtSymDefObject, TpmuAsymScheme, TpmuPublicId,
        TpmuPublicParms,
    },
};

use super::command::CommandError;

/// IAK attributes: fixedTPM, fixedParent, sensitiveDataOrigin, userWithAuth,
/// adminWithPolicy, restricted, sign.
pub const IAK_ATTRIBUTES: u32 = 0x0005_00F2;
/// IDevID attributes: as the IAK's, but not restricted.
pub const IDEVID_ATTRIBUTES: u32 = 0x0004_00F2;
/// The IAK's authPolicy, SHA-256 (TCG).
pub const IAK_POLICY_SHA256: [u8; 32] = [
    0x54, 0x37, 0x18, 0x23, 0x26, 0xe4, 0x14, 0xfc, 0xa7, 0x97, 0xd5, 0xf1, 0x74, 0x61, 0x5a, 0x16,
    0x41, 0xf6, 0x12, 0x55, 0x79, 0x7c, 0x3a, 0x2b, 0x22, 0xc2, 0x1d, 0x12, 0x0b, 0x2d, 0x1e, 0x07,
];
/// The IDevID's authPolicy, SHA-256 (TCG).
pub const IDEVID_POLICY_SHA256: [u8; 32] = [
    0xad, 0x6b, 0x3a, 0x22, 0x84, 0xfd, 0x69, 0x8a, 0x07, 0x10, 0xbf, 0x5c, 0xc1, 0xb9, 0xbd, 0xf1,
    0x5e, 0x25, 0x32, 0xe3, 0xf6, 0x01, 0xfa, 0x4b, 0x93, 0xa6, 0xa8, 0xfa, 0x8d, 0xe5, 0x79, 0xea,
];
/// The IAK's authPolicy, SHA-384 (TCG; the digest swtpm also uses).
pub const IAK_POLICY_SHA384: [u8; 48] = [
    0x12, 0x9d, 0x94, 0xeb, 0xf8, 0x45, 0x56, 0x65, 0x2c, 0x6e, 0xef, 0x43, 0xbb, 0xb7, 0x57, 0x51,
    0x2a, 0xc8, 0x7e, 0x52, 0xbe, 0x7b, 0x34, 0x9c, 0xa6, 0xce, 0x4d, 0x82, 0x6f, 0x74, 0x9f, 0xcf,
    0x67, 0x2f, 0x51, 0x71, 0x6c, 0x5c, 0xbb, 0x60, 0x5f, 0x31, 0x3b, 0xf3, 0x45, 0xaa, 0xb3, 0x12,
];
/// The IDevID's authPolicy, SHA-384 (TCG; the digest swtpm also uses).
pub const IDEVID_POLICY_SHA384: [u8; 48] = [
    0x4d, 0xb1, 0xaa, 0x83, 0x6d, 0x0b, 0x56, 0x15, 0xdf, 0x6e, 0xe5, 0x3a, 0x40, 0xef, 0x70, 0xc6,
    0x1c, 0x21, 0x7f, 0x43, 0x03, 0xd4, 0x46, 0x95, 0x92, 0x59, 0x72, 0xbc, 0x92, 0x70, 0x06, 0xcf,
    0xa5, 0xcb, 0xdf, 0x6d, 0xc1, 0x8c, 0x4d, 0xbe, 0x32, 0x9b, 0x2f, 0x15, 0x42, 0xc3, 0xdd, 0x33,
];
/// The IAK's authPolicy, SHA-512 (TCG).
pub const IAK_POLICY_SHA512: [u8; 64] = [
    0x80, 0x60, 0xd1, 0xfb, 0x31, 0x71, 0x6a, 0x29, 0xe4, 0x8a, 0x6e, 0x5f, 0xec, 0xe0, 0x88, 0xbc,
    0xfc, 0x1b, 0x27, 0x8f, 0xc1, 0x62, 0x25, 0x5e, 0x81, 0xc3, 0xec, 0xa3, 0x54, 0x4c, 0xd4, 0x4a,
    0xf9, 0x44, 0x10, 0xc3, 0x71, 0x5d, 0x56, 0x1c, 0xcc, 0xd9, 0xe3, 0x9a, 0x6c, 0xb2, 0x64, 0x6d,
    0x43, 0x53, 0x5b, 0xb5, 0x4e, 0xa8, 0x87, 0x10, 0xde, 0xb5, 0xf7, 0x83, 0x6b, 0xd9, 0xb5, 0x86,
];
/// The IDevID's authPolicy, SHA-512 (TCG).
pub const IDEVID_POLICY_SHA512: [u8; 64] = [
    0x7d, 0xd7, 0x50, 0x0f, 0xd6, 0xc1, 0xb9, 0x4f, 0x97, 0xa6, 0xaf, 0x91, 0x0d, 0xa1, 0x47, 0x30,
    0x1e, 0xf2, 0x8f, 0x66, 0x2f, 0xee, 0x06, 0xf2, 0x25, 0xa4, 0xcc, 0xad, 0xda, 0x3b, 0x4e, 0x6b,
    0x38, 0xe6, 0x6b, 0x2f, 0x3a, 0xd5, 0xde, 0xe1, 0xa0, 0x50, 0x3c, 0xd2, 0xda, 0xed, 0xb1, 0xe6,
    0x8c, 0xfe, 0x4f, 0x84, 0xb0, 0x3a, 0x8c, 0xd2, 0x2b, 0xb6, 0xa9, 0x76, 0xf0, 0x71, 0xa7, 0x2f,
];
/// The IAK's unique field ("IAK").
pub const IAK_UNIQUE: &[u8] = b"IAK";
/// The IDevID's unique field ("IDEVID").
pub const IDEVID_UNIQUE: &[u8] = b"IDEVID";

/// A TCG device identity template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevIdTemplate {
    /// H-1: RSA-2048, SHA-256.
    H1,
    /// H-2: ECC NIST P-256, SHA-256.
    H2,
    /// H-3: ECC NIST P-384, SHA-384.
    H3,
    /// H-4: ECC NIST P-521, SHA-512.
    H4,
    /// H-5: ECC SM2 P-256, SM3-256.
    H5,
}

impl DevIdTemplate {
    /// Its name, `H-1` to `H-5`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::H1 => "H-1",
            Self::H2 => "H-2",
            Self::H3 => "H-3",
            Self::H4 => "H-4",
            Self::H5 => "H-5",
        }
    }

    /// The template named `s` (`H-1` to `H-5`, case-insensitive).
    #[must_use]
    pub fn from_name(s: &str) -> Option<Self> {
        [Self::H1, Self::H2, Self::H3, Self::H4, Self::H5]
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(s))
    }
}

/// Which device identity key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevIdKey {
    /// The Initial Attestation Key.
    Iak,
    /// The Initial Device Identity key.
    IDevId,
}

/// The TPMT_PUBLIC of `key` by template `t`, for TPM2_CreatePrimary in the
/// endorsement hierarchy.
///
/// # Errors
///
/// [`CommandError::Invalid`] for H-5 (SM2 / SM3-256: the TPMs keylet is
/// tested with have no SM3-256, and the Keylime registrar cannot read an SM2
/// key nor an SM3 signature).
pub fn devid_template(key: DevIdKey, t: DevIdTemplate) -> Result<TpmtPublic, CommandError> {
    let cc = TpmCc::CreatePrimary;
    let invalid = |what| CommandError::Invalid { cc, what };
    let (name_alg, curve): (TpmAlgId, TpmEccCurve) = match t {
        DevIdTemplate::H1 | DevIdTemplate::H2 => (TpmAlgId::Sha256, TpmEccCurve::NistP256),
        DevIdTemplate::H3 => (TpmAlgId::Sha384, TpmEccCurve::NistP384),
        DevIdTemplate::H4 => (TpmAlgId::Sha512, TpmEccCurve::NistP521),
        DevIdTemplate::H5 => {
            return Err(invalid(
                "template H-5 (SM2 / SM3-256: not supported by keylet, see README)",
            ));
        }
    };
    let (policy, attributes, unique): (&[u8], u32, &[u8]) = match (key, t) {
        (DevIdKey::Iak, DevIdTemplate::H3) => (&IAK_POLICY_SHA384, IAK_ATTRIBUTES, IAK_UNIQUE),
        (DevIdKey::Iak, DevIdTemplate::H4) => (&IAK_POLICY_SHA512, IAK_ATTRIBUTES, IAK_UNIQUE),
        (DevIdKey::Iak, _) => (&IAK_POLICY_SHA256, IAK_ATTRIBUTES, IAK_UNIQUE),
        (DevIdKey::IDevId, DevIdTemplate::H3) => {
            (&IDEVID_POLICY_SHA384, IDEVID_ATTRIBUTES, IDEVID_UNIQUE)
        }
        (DevIdKey::IDevId, DevIdTemplate::H4) => {
            (&IDEVID_POLICY_SHA512, IDEVID_ATTRIBUTES, IDEVID_UNIQUE)
        }
        (DevIdKey::IDevId, _) => (&IDEVID_POLICY_SHA256, IDEVID_ATTRIBUTES, IDEVID_UNIQUE),
    };
    let name_hash = TpmuAsymScheme::Hash(TpmsSchemeHash { hash_alg: name_alg });
    let (object_type, parameters, unique) = match t {
        DevIdTemplate::H1 => (
            TpmAlgId::Rsa,
            TpmuPublicParms::Rsa(TpmsRsaParms {
                symmetric: TpmtSymDefObject::default(),
                scheme: match key {
                    DevIdKey::Iak => TpmtRsaScheme {
                        scheme: TpmAlgId::Rsapss,
                        details: name_hash,
                    },
                    DevIdKey::IDevId => TpmtRsaScheme::default(),
                },
                key_bits: TpmUint16::new(2048),
                exponent: TpmUint32::new(0),
            }),
            TpmuPublicId::Rsa(
                Tpm2bPublicKeyRsa::try_from(unique).map_err(|_| invalid("template unique"))?,
            ),
        ),
        // H-2 to H-4 (H-5 is refused above)
        _ => {
            let u = Tpm2bEccParameter::try_from(unique).map_err(|_| invalid("template unique"))?;
            (
                TpmAlgId::Ecc,
                TpmuPublicParms::Ecc(TpmsEccParms {
                    symmetric: TpmtSymDefObject::default(),
                    scheme: TpmtEccScheme {
                        scheme: TpmAlgId::Ecdsa,
                        details: name_hash,
                    },
                    curve_id: curve,
                    kdf: TpmtKdfScheme::default(),
                }),
                TpmuPublicId::Ecc(TpmsEccPoint { x: u, y: u }),
            )
        }
    };
    Ok(TpmtPublic {
        object_type,
        name_alg,
        object_attributes: TpmaObject::from_bits_truncate(attributes),
        auth_policy: Tpm2bDigest::try_from(policy).map_err(|_| invalid("template policy"))?,
        parameters,
        unique,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::tpm::template::marshal_public;

    fn bytes(key: DevIdKey, t: DevIdTemplate) -> heapless::Vec<u8, 256> {
        let mut buf = [0u8; 256];
        let b = marshal_public(&devid_template(key, t).unwrap(), &mut buf).unwrap();
        heapless::Vec::from_slice(b).unwrap()
    }

    // The TPMT_PUBLIC tpm2-tools 5.4 sends (`tpm2_createprimary -C e -g sha256 -L
    // POLICY -u UNIQUE --template-data OUT` against swtpm, recorded), with
    // `-a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|adminwithpolicy|restricted|sign'`
    // (the IDevID without `restricted`), -g sha256 unless named, and -G as named.

    /// `-G rsa2048:rsapss-sha256:null`, unique "IAK".
    const IAK_H1: &str = "0001000b000500f200205437182326e414fca797d5f174615a1641f61255797c3a2b22c21d120b2d1e0700100016000b080000000000000349414b";
    /// `-G rsa2048:null:null`, unique "IDEVID".
    const IDEVID_H1: &str = "0001000b000400f20020ad6b3a2284fd698a0710bf5cc1b9bdf15e2532e3f601fa4b93a6a8fa8de579ea001000100800000000000006494445564944";
    /// `-G ecc256:ecdsa-sha256:null`, unique x = y = "IAK".
    const IAK_H2: &str = "0023000b000500f200205437182326e414fca797d5f174615a1641f61255797c3a2b22c21d120b2d1e0700100018000b00030010000349414b000349414b";
    /// `-g sha384 -G ecc384:ecdsa-sha384:null`, unique x = y = "IAK".
    const IAK_H3: &str = "0023000c000500f20030129d94ebf84556652c6eef43bbb757512ac87e52be7b349ca6ce4d826f749fcf672f51716c5cbb605f313bf345aab31200100018000c00040010000349414b000349414b";
    /// `-g sha384 -G ecc384:ecdsa-sha384:null`, unique x = y = "IDEVID".
    const IDEVID_H3: &str = "0023000c000400f200304db1aa836d0b5615df6ee53a40ef70c61c217f4303d44695925972bc927006cfa5cbdf6dc18c4dbe329b2f1542c3dd3300100018000c0004001000064944455649440006494445564944";
    /// `-g sha512 -G ecc521:ecdsa-sha512:null`, unique x = y = "IAK".
    const IAK_H4: &str = "0023000d000500f200408060d1fb31716a29e48a6e5fece088bcfc1b278fc162255e81c3eca3544cd44af94410c3715d561cccd9e39a6cb2646d43535bb54ea88710deb5f7836bd9b58600100018000d00050010000349414b000349414b";
    /// `-g sha512 -G ecc521:ecdsa-sha512:null`, unique x = y = "IDEVID".
    const IDEVID_H4: &str = "0023000d000400f200407dd7500fd6c1b94f97a6af910da147301ef28f662fee06f225a4ccadda3b4e6b38e66b2f3ad5dee1a0503cd2daedb1e68cfe4f84b03a8cd22bb6a976f071a72f00100018000d0005001000064944455649440006494445564944";

    use crate::keylime::hex::test_bytes as hex;

    fn check(key: DevIdKey, t: DevIdTemplate, recorded: &str) {
        let b = bytes(key, t);
        let want = hex(recorded);
        assert_eq!(&b[2..], &want[..], "{key:?} {}", t.name());
        assert_eq!(usize::from(u16::from_be_bytes([b[0], b[1]])), want.len());
    }

    #[test]
    fn the_templates_are_the_bytes_tpm2_tools_sends() {
        check(DevIdKey::Iak, DevIdTemplate::H1, IAK_H1);
        check(DevIdKey::IDevId, DevIdTemplate::H1, IDEVID_H1);
        check(DevIdKey::Iak, DevIdTemplate::H2, IAK_H2);
        check(DevIdKey::Iak, DevIdTemplate::H3, IAK_H3);
        check(DevIdKey::IDevId, DevIdTemplate::H3, IDEVID_H3);
        check(DevIdKey::Iak, DevIdTemplate::H4, IAK_H4);
        check(DevIdKey::IDevId, DevIdTemplate::H4, IDEVID_H4);
    }

    #[test]
    fn templates_by_name_and_the_unsupported_ones() {
        assert_eq!(DevIdTemplate::from_name("h-2"), Some(DevIdTemplate::H2));
        assert_eq!(DevIdTemplate::from_name("H-6"), None);
        for key in [DevIdKey::Iak, DevIdKey::IDevId] {
            let e = devid_template(key, DevIdTemplate::H5).unwrap_err();
            assert!(matches!(e, CommandError::Invalid { what, .. } if what.contains("H-5")));
        }
    }
}
