//! AK templates and the marshalling of public areas; the EK templates are
//! in `template_ek.rs` (re-exported here).

use tpm2_protocol::{
    TpmMarshal, TpmWriter,
    basic::{TpmUint16, TpmUint32},
    data::{
        Tpm2bDigest, Tpm2bPublic, Tpm2bPublicKeyRsa, TpmAlgId, TpmCc, TpmEccCurve, TpmaObject,
        TpmsEccParms, TpmsEccPoint, TpmsRsaParms, TpmsSchemeHash, TpmtEccScheme, TpmtKdfScheme,
        TpmtPublic, TpmtRsaScheme, TpmtSymDefObject, TpmuAsymScheme, TpmuPublicId, TpmuPublicParms,
    },
};

use super::command::{CommandError, alg_id};
use crate::pcr::HashAlg;

pub use super::template_ek::*;

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

pub(super) fn invalid(cc: TpmCc, what: &'static str) -> CommandError {
    CommandError::Invalid { cc, what }
}

/// An AK template: a restricted signing key, RSASSA (RSA-2048) or ECDSA
/// (P-256, for an ECC `alg` of any size: [`KeyAlg::ak_alg`]) signing with `hash` (the quoted bank's: the Keylime verifier
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
    let (object_type, parameters, unique) = if alg.is_rsa() {
        (
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
        )
    } else {
        (
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
        )
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

    use crate::keylime::hex::test_bytes as hex;

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
