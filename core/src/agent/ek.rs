//! The EK persisted at its TCG handle: used instead of a new TPM2_CreatePrimary
//! (seconds of RSA key generation on a discrete TPM) when the TPM proves it
//! is the EK of the configured TCG template, never on the handle alone.
//!
//! What TPM2_ReadPublic proves: the public area matches the template byte
//! for byte except the key in `unique` (`template::ek_public_matches`); the
//! Name is that public area's; and the qualified Name is
//! `nameAlg || H(TPM_RH_ENDORSEMENT || Name)`, which the TPM gives only a
//! primary object of the endorsement hierarchy (TPM 2.0 Part 1, 16.4). A
//! primary of that hierarchy from the same template is the key
//! TPM2_CreatePrimary would make, so its public area, and the AK sealed
//! under it, stay the same.

use core::fmt;

use super::{AgentError, Tpm, copy_out, read_err};
use crate::pcr::HashAlg;
use crate::tpm::Handle;
use crate::tpm::command_keys;
use crate::tpm::name;
use crate::tpm::reader;
use crate::tpm::response::ResponseError;
use crate::tpm::template::{self, KeyAlg, RH_ENDORSEMENT};
use crate::tpm::transport::Transport;

/// Where the EK in use comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EkOrigin {
    /// The persistent handle the configuration names, read as it is.
    Configured,
    /// The TCG persistent handle, verified to hold the template's EK: no key
    /// generation.
    Persisted,
    /// Made with TPM2_CreatePrimary (a transient object); what the TCG
    /// handle held instead.
    Created(AtTcgHandle),
}

/// What the TCG persistent handle held when the EK had to be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtTcgHandle {
    /// No object (TPM2_ReadPublic answered with this response code).
    Nothing(u32),
    /// An object that is not the EK of the configured template.
    Other(NotTheEk),
}

/// Why the object at the TCG handle is not used as the EK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotTheEk {
    /// Its public area differs from the configured TCG EK template (another
    /// algorithm, key size, attributes or policy).
    Template,
    /// Its Name is not its public area's, or its qualified Name is not a
    /// primary's of the endorsement hierarchy.
    NotEndorsementPrimary,
}

impl fmt::Display for NotTheEk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Template => "its public area is not the configured TCG EK template's",
            Self::NotEndorsementPrimary => {
                "it is not a primary key of the endorsement hierarchy (its qualified Name)"
            }
        })
    }
}

/// What [`Tpm::persisted_ek`] found.
pub(super) enum Found {
    /// The EK; the length of its TPM2B_PUBLIC in the caller's buffer.
    Ek(usize),
    /// Something else, or nothing.
    NotUsable(AtTcgHandle),
}

/// Whether `qualified` is the qualified Name of a primary object of the
/// endorsement hierarchy with Name `name` (hashed with the Name's own
/// algorithm, the object's nameAlg: SHA-256 for the low-range EKs, SHA-384
/// or SHA-512 for the high range).
fn is_endorsement_primary(name: &[u8], qualified: &[u8]) -> bool {
    let Some(alg) = name
        .get(..2)
        .and_then(|b| <[u8; 2]>::try_from(b).ok())
        .map(u16::from_be_bytes)
        .and_then(HashAlg::from_alg_id)
        .filter(|a| *a != HashAlg::Sha1)
    else {
        return false;
    };
    let digest = alg.hash_parts(&[&RH_ENDORSEMENT.to_be_bytes(), name]);
    let (head, tail) = qualified.split_at(qualified.len().min(2));
    head == alg.alg_id().to_be_bytes() && tail == digest.as_bytes()
}

impl<T: Transport> Tpm<'_, T> {
    /// Reads the object at `handle` (TPM2_ReadPublic) and checks that it is
    /// the TCG EK of `alg`; if so its TPM2B_PUBLIC is in `public_out`.
    ///
    /// # Errors
    ///
    /// [`AgentError`] if the transport fails, the response is malformed or
    /// `public_out` is too small; a TPM error code is [`AtTcgHandle::Nothing`].
    pub(super) async fn persisted_ek(
        &mut self,
        alg: KeyAlg,
        handle: Handle,
        public_out: &mut [u8],
    ) -> Result<Found, AgentError<T::Error>> {
        let r = match self.execute(|b| command_keys::read_public(b, handle)).await {
            Ok(r) => r,
            Err(AgentError::Response(ResponseError::Tpm { rc, .. })) => {
                return Ok(Found::NotUsable(AtTcgHandle::Nothing(rc.0)));
            }
            Err(e) => return Err(e),
        };
        let parts = reader::read_public(r.parameters).map_err(read_err(r.cc))?;
        if !template::ek_public_matches(alg, parts.public) {
            return Ok(Found::NotUsable(AtTcgHandle::Other(NotTheEk::Template)));
        }
        let named = name::of_tpm2b_public(parts.public).is_ok_and(|n| n.as_bytes() == parts.name);
        if !named || !is_endorsement_primary(parts.name, parts.qualified_name) {
            return Ok(Found::NotUsable(AtTcgHandle::Other(
                NotTheEk::NotEndorsementPrimary,
            )));
        }
        Ok(Found::Ek(copy_out(
            parts.public,
            public_out,
            "public area",
        )?))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn only_the_endorsement_hierarchy_qualifies_a_primary() {
        let name = [0x00, 0x0b, 1, 2, 3];
        let alg = HashAlg::Sha256;
        let mut qn = [0u8; 34];
        qn[..2].copy_from_slice(&[0x00, 0x0b]);
        let d = alg.hash_parts(&[&RH_ENDORSEMENT.to_be_bytes(), &name]);
        qn[2..].copy_from_slice(d.as_bytes());
        assert!(is_endorsement_primary(&name, &qn));
        let owner = alg.hash_parts(&[&0x4000_0001u32.to_be_bytes(), &name]);
        qn[2..].copy_from_slice(owner.as_bytes());
        assert!(!is_endorsement_primary(&name, &qn), "owner hierarchy");
        assert!(!is_endorsement_primary(&name, &[]));
        assert!(!is_endorsement_primary(&name, &qn[..2]));
        assert!(!is_endorsement_primary(&[], &qn), "no Name");
    }

    #[test]
    fn a_sha384_name_is_qualified_with_sha384() {
        let name = [0x00, 0x0c, 9, 8, 7];
        let alg = HashAlg::Sha384;
        let mut qn = [0u8; 50];
        qn[..2].copy_from_slice(&[0x00, 0x0c]);
        let d = alg.hash_parts(&[&RH_ENDORSEMENT.to_be_bytes(), &name]);
        qn[2..].copy_from_slice(d.as_bytes());
        assert!(is_endorsement_primary(&name, &qn));
        let sha256 = HashAlg::Sha256.hash_parts(&[&RH_ENDORSEMENT.to_be_bytes(), &name]);
        let mut as256 = [0u8; 34];
        as256[..2].copy_from_slice(&[0x00, 0x0b]);
        as256[2..].copy_from_slice(sha256.as_bytes());
        assert!(
            !is_endorsement_primary(&name, &as256),
            "hashed with another algorithm"
        );
    }
}
