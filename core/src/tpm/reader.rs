//! Borrowed readers for the parameter areas of the responses keylet uses,
//! built on tpm2-protocol's views (each field through [`Fields`]).
//!
//! Each reader takes [`Response::parameters`](super::response::Response) (and
//! the handle, where the response has one) and returns views that borrow the
//! frame. Errors name the field and carry its byte offset within the
//! parameter area.

use tpm2_protocol::basic::{Tpm2b as Tpm2bView, TpmUint16, TpmUint32};
use tpm2_protocol::constant::MAX_DIGEST_SIZE;
use tpm2_protocol::data::{
    Tpm2b, Tpm2bCreationData, Tpm2bDigest, Tpm2bEncryptedSecret, Tpm2bIdObject, Tpm2bMaxNvBuffer,
    Tpm2bName, Tpm2bNonce, Tpm2bNvPublic, Tpm2bPrivate, Tpm2bPublic, TpmAlgId, TpmaNv, TpmlDigest,
    TpmlPcrSelection, TpmsPcrSelection, TpmtSignature, TpmtTkCreation,
};

use super::fields::Fields;
use crate::pcr::PcrMask;

pub use super::cursor::ReadError;

/// TPM2_Quote and TPM2_Certify: the signed attestation and its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuoteParts<'a> {
    /// The TPMS_ATTEST bytes, without the TPM2B size: exactly what was signed.
    pub attest: &'a [u8],
    /// The marshalled TPMT_SIGNATURE.
    pub signature: &'a [u8],
}

/// The parts of a TPM2_Certify response: the same layout as a quote's.
pub type CertifyParts<'a> = QuoteParts<'a>;

/// Reads a TPM2_Quote response.
///
/// # Errors
///
/// [`ReadError`] if the attest or signature is malformed.
pub fn quote(params: &[u8]) -> Result<QuoteParts<'_>, ReadError> {
    signed_attest(params, "quoted (TPM2B_ATTEST)")
}

/// Reads a TPM2_Certify response: certifyInfo (a TPM2B_ATTEST) and the
/// TPMT_SIGNATURE over it. What the TPMS_ATTEST says is read by
/// [`crate::verify::read_certify`].
///
/// # Errors
///
/// [`ReadError`] if the attest or signature is malformed.
pub fn certify(params: &[u8]) -> Result<CertifyParts<'_>, ReadError> {
    signed_attest(params, "certifyInfo (TPM2B_ATTEST)")
}

/// A TPM2B_ATTEST followed by a TPMT_SIGNATURE (ignoring what follows it).
/// The attestation is taken as bytes here; the verifier reads it
/// (`verify::read_attest`), so the quote path parses it once.
fn signed_attest<'a>(params: &'a [u8], what: &'static str) -> Result<QuoteParts<'a>, ReadError> {
    let mut f = Fields::new(params);
    let attest = f.field::<Tpm2b>(what)?.data();
    let signature = f.rest();
    let start = f.offset();
    f.field::<TpmtSignature>("signature (TPMT_SIGNATURE)")?;
    let used = f.offset().saturating_sub(start);
    let signature = signature
        .get(..used)
        .ok_or(ReadError::invalid("signature (TPMT_SIGNATURE)", start))?;
    Ok(QuoteParts { attest, signature })
}

/// TPM2_PCR_Read: which PCRs were read and their values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcrReadParts<'a> {
    /// pcrUpdateCounter.
    pub update_counter: u32,
    /// The bank of the (first) returned selection; 0 if the TPM returned none.
    pub bank: u16,
    /// The PCRs actually read, in that bank.
    pub mask: PcrMask,
    /// The digests, one per PCR in `mask`, ascending.
    pub digests: Digests<'a>,
}

/// The TPML_DIGEST of a PCR_Read response (validated by tpm2-protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digests<'a> {
    count: u32,
    items: &'a [u8],
}

impl<'a> Digests<'a> {
    /// How many digests there are.
    #[must_use]
    pub const fn count(&self) -> u32 {
        self.count
    }

    /// The digests in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        let mut rest = self.items;
        (0..self.count).map_while(move |_| {
            let (d, tail) = Tpm2bView::<MAX_DIGEST_SIZE>::cast_prefix(rest).ok()?;
            rest = tail;
            Some(d.data())
        })
    }
}

/// Reads a TPM2_PCR_Read response.
///
/// # Errors
///
/// [`ReadError`] if the selection or digests are malformed, more than one
/// bank came back, or the number of digests is not the number of PCRs read.
pub fn pcr_read(params: &[u8]) -> Result<PcrReadParts<'_>, ReadError> {
    let mut f = Fields::new(params);
    let update_counter = f.field::<TpmUint32>("pcrUpdateCounter")?.value();
    let selection_at = f.offset();
    let selection = f.field::<TpmlPcrSelection>("pcrSelectionOut")?;
    let (bank, mask) = match selection.count() {
        0 => (0, PcrMask::EMPTY),
        1 => {
            let at = selection_at.saturating_add(4);
            let mut s = Fields::at(selection.items_bytes(), at);
            let (alg, select) = s.field::<TpmsPcrSelection>("pcrSelectionOut")?;
            let mask = PcrMask::from_select_bytes(select)
                .map_err(|_| ReadError::invalid("PCR above 23 in pcrSelectionOut", at))?;
            (alg.value(), mask)
        }
        _ => {
            return Err(ReadError::invalid(
                "more than one bank in pcrSelectionOut",
                selection_at,
            ));
        }
    };
    let count_at = f.offset();
    let digests = f.field::<TpmlDigest>("pcrValues")?;
    let count = u32::try_from(digests.count()).unwrap_or(u32::MAX);
    if digests.count() != mask.count() {
        return Err(ReadError::invalid(
            "digest count differs from the PCRs selected",
            count_at,
        ));
    }
    Ok(PcrReadParts {
        update_counter,
        bank,
        mask,
        digests: Digests {
            count,
            items: digests.items_bytes(),
        },
    })
}

/// A key the TPM created or loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectParts<'a> {
    /// The TPM2B_PUBLIC, with its 2-byte size (empty for Load).
    pub public: &'a [u8],
    /// The TPM2B_PRIVATE, with its 2-byte size (Create only, else empty).
    pub private: &'a [u8],
    /// The object's Name, without the TPM2B size (empty for Create).
    pub name: &'a [u8],
    /// The object's qualified Name, without the TPM2B size (ReadPublic only, else empty).
    pub qualified_name: &'a [u8],
}

/// Reads a TPM2_CreatePrimary response (the handle is in the handle area).
///
/// # Errors
///
/// [`ReadError`] if a field is malformed.
pub fn create_primary(params: &[u8]) -> Result<ObjectParts<'_>, ReadError> {
    let mut f = Fields::new(params);
    let public = f.field::<Tpm2bPublic>("outPublic")?.as_bytes();
    creation(&mut f)?;
    let name = f.field::<Tpm2bName>("name")?.data();
    Ok(ObjectParts {
        public,
        private: &[],
        name,
        qualified_name: &[],
    })
}

/// Reads a TPM2_Create response.
///
/// # Errors
///
/// [`ReadError`] if a field is malformed.
pub fn create(params: &[u8]) -> Result<ObjectParts<'_>, ReadError> {
    let mut f = Fields::new(params);
    let private = f.field::<Tpm2bPrivate>("outPrivate")?.as_bytes();
    let public = f.field::<Tpm2bPublic>("outPublic")?.as_bytes();
    creation(&mut f)?;
    Ok(ObjectParts {
        public,
        private,
        name: &[],
        qualified_name: &[],
    })
}

/// creationData, creationHash and creationTicket, which keylet does not use.
fn creation(f: &mut Fields<'_>) -> Result<(), ReadError> {
    f.field::<Tpm2bCreationData>("creationData")?;
    f.field::<Tpm2bDigest>("creationHash")?;
    f.field::<TpmtTkCreation>("creationTicket")?;
    Ok(())
}

/// Reads a TPM2_Load response: the Name of the loaded object.
///
/// # Errors
///
/// [`ReadError`] if the name is malformed.
pub fn load(params: &[u8]) -> Result<&[u8], ReadError> {
    Ok(Fields::new(params).field::<Tpm2bName>("name")?.data())
}

/// Reads a TPM2_ReadPublic response.
///
/// # Errors
///
/// [`ReadError`] if a field is malformed.
pub fn read_public(params: &[u8]) -> Result<ObjectParts<'_>, ReadError> {
    let mut f = Fields::new(params);
    let public = f.field::<Tpm2bPublic>("outPublic")?.as_bytes();
    let name = f.field::<Tpm2bName>("name")?.data();
    let qualified_name = f.field::<Tpm2bName>("qualifiedName")?.data();
    Ok(ObjectParts {
        public,
        private: &[],
        name,
        qualified_name,
    })
}

/// The public area of an NV index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NvPublic {
    /// nvIndex.
    pub index: u32,
    /// TPMA_NV attributes.
    pub attributes: u32,
    /// dataSize: how many bytes the index holds.
    pub data_size: u16,
}

/// Reads a TPM2_NV_ReadPublic response.
///
/// # Errors
///
/// [`ReadError`] if a field is malformed.
pub fn nv_read_public(params: &[u8]) -> Result<NvPublic, ReadError> {
    let mut f = Fields::new(params);
    let area = f.field::<Tpm2bNvPublic>("nvPublic")?.as_bytes();
    // The TPMS_NV_PUBLIC inside, validated by the cast above.
    let mut a = Fields::at(area.get(2..).unwrap_or(&[]), 2);
    let index = a.field::<TpmUint32>("nvIndex")?.value();
    a.field::<TpmAlgId>("nameAlg")?;
    let attributes = a.field::<TpmaNv>("attributes")?.bits();
    a.field::<Tpm2bDigest>("authPolicy")?;
    let data_size = a.field::<TpmUint16>("dataSize")?.value();
    Ok(NvPublic {
        index,
        attributes,
        data_size,
    })
}

/// Reads a TPM2_NV_Read response: the chunk read.
///
/// # Errors
///
/// [`ReadError`] if the buffer is malformed.
pub fn nv_read(params: &[u8]) -> Result<&[u8], ReadError> {
    Ok(Fields::new(params)
        .field::<Tpm2bMaxNvBuffer>("data")?
        .data())
}

/// Reads a TPM2_StartAuthSession response: nonceTPM (the handle is in the
/// handle area).
///
/// # Errors
///
/// [`ReadError`] if the nonce is malformed.
pub fn start_auth_session(params: &[u8]) -> Result<&[u8], ReadError> {
    Ok(Fields::new(params).field::<Tpm2bNonce>("nonceTPM")?.data())
}

/// Reads a TPM2_ActivateCredential response: the recovered secret (certInfo).
///
/// # Errors
///
/// [`ReadError`] if the digest is malformed.
pub fn activate_credential(params: &[u8]) -> Result<&[u8], ReadError> {
    Ok(Fields::new(params).field::<Tpm2bDigest>("certInfo")?.data())
}

/// Reads a TPM2_GetRandom response: the random bytes.
///
/// # Errors
///
/// [`ReadError`] if the digest is malformed.
pub fn get_random(params: &[u8]) -> Result<&[u8], ReadError> {
    Ok(Fields::new(params)
        .field::<Tpm2bDigest>("randomBytes")?
        .data())
}

/// TPM2_MakeCredential: `(credentialBlob, secret)` contents, without sizes.
///
/// # Errors
///
/// [`ReadError`] if a field is malformed.
pub fn make_credential(params: &[u8]) -> Result<(&[u8], &[u8]), ReadError> {
    let mut f = Fields::new(params);
    let blob = f.field::<Tpm2bIdObject>("credentialBlob")?.data();
    let secret = f.field::<Tpm2bEncryptedSecret>("secret")?.data();
    Ok((blob, secret))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::super::cursor::ReadErrorKind;
    use super::*;

    #[test]
    fn pcr_read_counts_digests_against_the_selection() {
        // counter 5, one bank (SHA-256, PCRs 0 and 1), one digest of 32 bytes.
        let mut p = [0u8; 4 + 4 + 6 + 4 + 34];
        p[3] = 5;
        p[7] = 1;
        p[8..14].copy_from_slice(&[0x00, 0x0b, 3, 0b11, 0, 0]);
        p[17] = 1;
        p[19] = 32;
        assert_eq!(
            pcr_read(&p).unwrap_err(),
            ReadError::invalid("digest count differs from the PCRs selected", 14)
        );
        p[11] = 0b1;
        let parts = pcr_read(&p).unwrap();
        assert_eq!((parts.update_counter, parts.bank), (5, 0x000b));
        assert_eq!(
            parts.digests.iter().collect::<heapless::Vec<_, 2>>(),
            [&[0u8; 32][..]]
        );
    }

    #[test]
    fn sizes_above_the_tpm_limits_name_the_field() {
        // An NV_Read chunk above TPM2B_MAX_NV_BUFFER (1024).
        let mut p = [0u8; 2 + 1025];
        p[..2].copy_from_slice(&1025u16.to_be_bytes());
        let e = nv_read(&p).unwrap_err();
        assert_eq!(e.what, "data");
        assert_eq!(
            e.kind,
            ReadErrorKind::TooLarge {
                limit: 1024,
                actual: 1025
            }
        );
    }

    #[test]
    fn an_unknown_signature_algorithm_is_named_with_its_offset() {
        // attest "ab", then sigAlg 0x7777.
        let p = [0, 2, b'a', b'b', 0x77, 0x77, 0, 0];
        let e = quote(&p).unwrap_err();
        assert_eq!(e.what, "signature (TPMT_SIGNATURE)");
        assert_eq!(e.offset, 4);
        assert_eq!(e.kind, ReadErrorKind::Unknown { value: 0x7777 });
        // NULL signature: no body.
        let p = [0, 2, b'a', b'b', 0x00, 0x10];
        assert_eq!(
            quote(&p).unwrap(),
            QuoteParts {
                attest: b"ab",
                signature: &[0x00, 0x10]
            }
        );
    }
}
