//! Borrowed readers for the parameter areas of the responses keylet uses.
//!
//! Each reader takes [`Response::parameters`](super::response::Response) (and
//! the handle, where the response has one) and returns views that borrow the
//! frame. Errors carry the byte offset within the parameter area.

use crate::pcr::PcrMask;
use crate::public::alg;

pub use super::cursor::{Cursor, ReadError};

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
fn signed_attest<'a>(params: &'a [u8], what: &'static str) -> Result<QuoteParts<'a>, ReadError> {
    let mut c = Cursor::new(params);
    let attest = c.tpm2b(what)?;
    let signature = c.rest();
    let mut s = Cursor::new(signature);
    let alg = s.u16("signature algorithm")?;
    match alg {
        // RSASSA, RSAPSS: hash, TPM2B
        alg::RSASSA | alg::RSAPSS => {
            s.u16("signature hash")?;
            s.tpm2b("RSA signature")?;
        }
        // ECDSA, ECDAA, SM2, ECSCHNORR: hash, r, s
        alg::ECDSA | alg::ECDAA | alg::SM2 | alg::ECSCHNORR => {
            s.u16("signature hash")?;
            s.tpm2b("ECC signature r")?;
            s.tpm2b("ECC signature s")?;
        }
        alg::NULL => {}
        _ => {
            return Err(ReadError::invalid(
                "unsupported signature algorithm",
                c.offset(),
            ));
        }
    }
    let used = s.offset();
    let signature = signature
        .get(..used)
        .ok_or(ReadError::invalid("signature", c.offset()))?;
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

/// The TPML_DIGEST of a PCR_Read response.
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
        let mut c = Cursor::new(self.items);
        (0..self.count).map_while(move |_| c.tpm2b("digest").ok())
    }
}

/// Reads a TPM2_PCR_Read response.
///
/// # Errors
///
/// [`ReadError`] if the selection or digests are malformed, more than one
/// bank came back, or the number of digests is not the number of PCRs read.
pub fn pcr_read(params: &[u8]) -> Result<PcrReadParts<'_>, ReadError> {
    let mut c = Cursor::new(params);
    let update_counter = c.u32("pcrUpdateCounter")?;
    let banks = c.u32("pcrSelectionOut count")?;
    let (bank, mask) = match banks {
        0 => (0, PcrMask::EMPTY),
        1 => {
            let at = c.offset();
            let (alg, select) = c.pcr_selection("pcrSelectionOut")?;
            let mask = PcrMask::from_select_bytes(select)
                .map_err(|_| ReadError::invalid("PCR above 23 in pcrSelectionOut", at))?;
            (alg, mask)
        }
        _ => {
            return Err(ReadError::invalid(
                "more than one bank in pcrSelectionOut",
                4,
            ));
        }
    };
    let count_at = c.offset();
    let count = c.u32("pcrValues count")?;
    let mut check = c.clone();
    for _ in 0..count {
        check.tpm2b("pcrValues digest")?;
    }
    if usize::try_from(count).ok() != Some(mask.count()) {
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
            items: params.get(c.offset()..check.offset()).unwrap_or(&[]),
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
    let mut c = Cursor::new(params);
    let public = c.tpm2b_whole("outPublic")?;
    c.tpm2b("creationData")?;
    c.tpm2b("creationHash")?;
    creation_ticket(&mut c)?;
    let name = c.tpm2b("name")?;
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
    let mut c = Cursor::new(params);
    let private = c.tpm2b_whole("outPrivate")?;
    let public = c.tpm2b_whole("outPublic")?;
    c.tpm2b("creationData")?;
    c.tpm2b("creationHash")?;
    creation_ticket(&mut c)?;
    Ok(ObjectParts {
        public,
        private,
        name: &[],
        qualified_name: &[],
    })
}

fn creation_ticket(c: &mut Cursor<'_>) -> Result<(), ReadError> {
    c.u16("creationTicket tag")?;
    c.u32("creationTicket hierarchy")?;
    c.tpm2b("creationTicket digest")?;
    Ok(())
}

/// Reads a TPM2_Load response: the Name of the loaded object.
///
/// # Errors
///
/// [`ReadError`] if the name is malformed.
pub fn load(params: &[u8]) -> Result<&[u8], ReadError> {
    Cursor::new(params).tpm2b("name")
}

/// Reads a TPM2_ReadPublic response.
///
/// # Errors
///
/// [`ReadError`] if a field is malformed.
pub fn read_public(params: &[u8]) -> Result<ObjectParts<'_>, ReadError> {
    let mut c = Cursor::new(params);
    let public = c.tpm2b_whole("outPublic")?;
    let name = c.tpm2b("name")?;
    let qualified_name = c.tpm2b("qualifiedName")?;
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
    let mut c = Cursor::new(params);
    let area = c.tpm2b("nvPublic")?;
    let mut a = Cursor::new(area);
    let index = a.u32("nvIndex")?;
    a.u16("nameAlg")?;
    let attributes = a.u32("attributes")?;
    a.tpm2b("authPolicy")?;
    let data_size = a.u16("dataSize")?;
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
    Cursor::new(params).tpm2b("data")
}

/// Reads a TPM2_StartAuthSession response: nonceTPM (the handle is in the
/// handle area).
///
/// # Errors
///
/// [`ReadError`] if the nonce is malformed.
pub fn start_auth_session(params: &[u8]) -> Result<&[u8], ReadError> {
    Cursor::new(params).tpm2b("nonceTPM")
}

/// Reads a TPM2_ActivateCredential response: the recovered secret (certInfo).
///
/// # Errors
///
/// [`ReadError`] if the digest is malformed.
pub fn activate_credential(params: &[u8]) -> Result<&[u8], ReadError> {
    Cursor::new(params).tpm2b("certInfo")
}

/// Reads a TPM2_GetRandom response: the random bytes.
///
/// # Errors
///
/// [`ReadError`] if the digest is malformed.
pub fn get_random(params: &[u8]) -> Result<&[u8], ReadError> {
    Cursor::new(params).tpm2b("randomBytes")
}

/// TPM2_MakeCredential: `(credentialBlob, secret)` contents, without sizes.
///
/// # Errors
///
/// [`ReadError`] if a field is malformed.
pub fn make_credential(params: &[u8]) -> Result<(&[u8], &[u8]), ReadError> {
    let mut c = Cursor::new(params);
    let blob = c.tpm2b("credentialBlob")?;
    let secret = c.tpm2b("secret")?;
    Ok((blob, secret))
}
