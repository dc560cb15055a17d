//! The TCG device identity templates ("TPM 2.0 Keys for Device Identity and
//! Attestation"): the IAK and IDevID as primary keys of the endorsement
//! hierarchy, re-created from their template (H-1 RSA-2048 / SHA-256, H-2 ECC
//! NIST P-256 / SHA-256; H-3 to H-5 use curves keylet does not read).
//!
//! The IAK is a restricted signing key (RSASSA-PSS or ECDSA with the name
//! hash, unique "IAK"); the IDevID an unrestricted signing key (RSA with a
//! NULL scheme, or ECDSA, unique "IDEVID"). Both have userWithAuth and
//! adminWithPolicy with the TCG policy digest, an empty authValue, no
//! symmetric algorithm. The same bytes as the reference Keylime agent uses, so
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
/// [`CommandError::Invalid`] for H-3 to H-5 (curves keylet does not read).
pub fn devid_template(key: DevIdKey, t: DevIdTemplate) -> Result<TpmtPublic, CommandError> {
    let cc = TpmCc::CreatePrimary;
    let invalid = |what| CommandError::Invalid { cc, what };
    let (policy, attributes, unique) = match key {
        DevIdKey::Iak => (&IAK_POLICY_SHA256, IAK_ATTRIBUTES, IAK_UNIQUE),
        DevIdKey::IDevId => (&IDEVID_POLICY_SHA256, IDEVID_ATTRIBUTES, IDEVID_UNIQUE),
    };
    let sha256 = TpmuAsymScheme::Hash(TpmsSchemeHash {
        hash_alg: TpmAlgId::Sha256,
    });
    let (object_type, parameters, unique) = match t {
        DevIdTemplate::H1 => (
            TpmAlgId::Rsa,
            TpmuPublicParms::Rsa(TpmsRsaParms {
                symmetric: TpmtSymDefObject::default(),
                scheme: match key {
                    DevIdKey::Iak => TpmtRsaScheme {
                        scheme: TpmAlgId::Rsapss,
                        details: sha256,
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
        DevIdTemplate::H2 => {
            let u = Tpm2bEccParameter::try_from(unique).map_err(|_| invalid("template unique"))?;
            (
                TpmAlgId::Ecc,
                TpmuPublicParms::Ecc(TpmsEccParms {
                    symmetric: TpmtSymDefObject::default(),
                    scheme: TpmtEccScheme {
                        scheme: TpmAlgId::Ecdsa,
                        details: sha256,
                    },
                    curve_id: TpmEccCurve::NistP256,
                    kdf: TpmtKdfScheme::default(),
                }),
                TpmuPublicId::Ecc(TpmsEccPoint { x: u, y: u }),
            )
        }
        DevIdTemplate::H3 | DevIdTemplate::H4 | DevIdTemplate::H5 => {
            return Err(invalid(
                "template H-3 to H-5 (P-384, P-521, SM2: keylet reads RSA-2048 and P-256 keys)",
            ));
        }
    };
    Ok(TpmtPublic {
        object_type,
        name_alg: TpmAlgId::Sha256,
        object_attributes: TpmaObject::from_bits_truncate(attributes),
        auth_policy: Tpm2bDigest::try_from(&policy[..]).map_err(|_| invalid("template policy"))?,
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
    // (the IDevID without `restricted`) and -G as named.

    /// `-G rsa2048:rsapss-sha256:null`, unique "IAK".
    const IAK_H1: &str = "0001000b000500f200205437182326e414fca797d5f174615a1641f61255797c3a2b22c21d120b2d1e0700100016000b080000000000000349414b";
    /// `-G rsa2048:null:null`, unique "IDEVID".
    const IDEVID_H1: &str = "0001000b000400f20020ad6b3a2284fd698a0710bf5cc1b9bdf15e2532e3f601fa4b93a6a8fa8de579ea001000100800000000000006494445564944";
    /// `-G ecc256:ecdsa-sha256:null`, unique x = y = "IAK".
    const IAK_H2: &str = "0023000b000500f200205437182326e414fca797d5f174615a1641f61255797c3a2b22c21d120b2d1e0700100018000b00030010000349414b000349414b";

    fn hex(s: &str) -> heapless::Vec<u8, 256> {
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

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
    }

    #[test]
    fn templates_by_name_and_the_unsupported_ones() {
        assert_eq!(DevIdTemplate::from_name("h-2"), Some(DevIdTemplate::H2));
        assert_eq!(DevIdTemplate::from_name("H-6"), None);
        for t in [DevIdTemplate::H3, DevIdTemplate::H4, DevIdTemplate::H5] {
            assert!(devid_template(DevIdKey::Iak, t).is_err(), "{}", t.name());
        }
    }
}
