//! Reading EK certificates from NV.

use super::{AgentError, Tpm, copy_out, read_err};
use crate::tpm::capability::{self, CAP_TPM_PROPERTIES, PT_NV_BUFFER_MAX};
use crate::tpm::command;
use crate::tpm::command_keys;
use crate::tpm::reader::{self, ReadError};
use crate::tpm::transport::Transport;

/// The most one NV_Read returns through tpm2-protocol's TPM2B_MAX_NV_BUFFER.
pub const MAX_NV_CHUNK: u16 = 1024;

impl<T: Transport> Tpm<'_, T> {
    /// The TPM's NV read chunk size: TPM_PT_NV_BUFFER_MAX, capped at
    /// [`MAX_NV_CHUNK`] (and [`MAX_NV_CHUNK`] if the TPM does not say).
    ///
    /// # Errors
    ///
    /// [`AgentError`] if GetCapability fails.
    pub async fn nv_chunk_size(&mut self) -> Result<u16, AgentError<T::Error>> {
        let r = self
            .execute(|b| command::get_capability(b, CAP_TPM_PROPERTIES, PT_NV_BUFFER_MAX, 1))
            .await?;
        let cap = capability::read(r.parameters).map_err(read_err(r.cc))?;
        let max = cap
            .property(PT_NV_BUFFER_MAX)
            .and_then(|v| u16::try_from(v).ok())
            .filter(|v| *v > 0)
            .unwrap_or(MAX_NV_CHUNK);
        Ok(max.min(MAX_NV_CHUNK))
    }

    /// Reads the certificate in NV index `index` into `out` and returns its
    /// length, trimmed to the DER SEQUENCE (NV indices are often padded).
    ///
    /// # Errors
    ///
    /// [`AgentError::Response`] with TPM_RC_HANDLE if the index does not
    /// exist, [`AgentError::BufferTooSmall`] if `out` cannot hold it,
    /// [`AgentError::NotDer`] if it does not hold a DER SEQUENCE.
    pub async fn read_ek_cert(
        &mut self,
        index: u32,
        out: &mut [u8],
    ) -> Result<usize, AgentError<T::Error>> {
        let r = self
            .execute(|b| command_keys::nv_read_public(b, index))
            .await?;
        let nv = reader::nv_read_public(r.parameters).map_err(read_err(r.cc))?;
        let size = nv.data_size;
        if usize::from(size) > out.len() {
            return Err(AgentError::BufferTooSmall {
                what: "EK certificate",
                needed: usize::from(size),
                available: out.len(),
            });
        }
        let chunk = self.nv_chunk_size().await?;
        let mut offset: u16 = 0;
        while offset < size {
            let want = chunk.min(size.saturating_sub(offset));
            let r = self
                .execute(|b| command_keys::nv_read(b, index, want, offset))
                .await?;
            let data = reader::nv_read(r.parameters).map_err(read_err(r.cc))?;
            if data.len() != usize::from(want) {
                return Err(AgentError::Read {
                    cc: r.cc,
                    error: ReadError::invalid("NV_Read returned fewer bytes than asked", 0),
                });
            }
            let dst = out.get_mut(usize::from(offset)..).unwrap_or(&mut []);
            copy_out(data, dst, "EK certificate")?;
            offset = offset.saturating_add(want);
        }
        let stored = out.get(..usize::from(size)).unwrap_or(&[]);
        der_sequence_len(stored).ok_or(AgentError::NotDer { index })
    }
}

/// The length of the DER SEQUENCE at the start of `bytes`, if it is one and
/// fits.
#[must_use]
pub fn der_sequence_len(bytes: &[u8]) -> Option<usize> {
    if *bytes.first()? != 0x30 {
        return None;
    }
    let first = *bytes.get(1)?;
    let (header, len) = if first < 0x80 {
        (2usize, usize::from(first))
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 3 {
            return None;
        }
        let len = bytes
            .get(2..2usize.checked_add(n)?)?
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (2usize.checked_add(n)?, len)
    };
    let total = header.checked_add(len)?;
    (total <= bytes.len()).then_some(total)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::der_sequence_len;

    #[test]
    fn der_lengths() {
        assert_eq!(der_sequence_len(&[0x30, 0x02, 1, 2, 0xff, 0xff]), Some(4));
        assert_eq!(der_sequence_len(&[0x30, 0x81, 0x01, 7, 0]), Some(4));
        let mut long = [0u8; 0x104];
        long[..4].copy_from_slice(&[0x30, 0x82, 0x01, 0x00]);
        assert_eq!(der_sequence_len(&long), Some(0x104));
        assert_eq!(der_sequence_len(&long[..0x103]), None);
        assert_eq!(der_sequence_len(&[0x04, 0x00]), None);
        assert_eq!(der_sequence_len(&[0x30, 0x80]), None);
    }
}
