//! Keylime's payload encryption (`keylime.crypto.encrypt`): AES-GCM with K,
//! a 16-byte IV, no associated data, laid out as `IV ‖ ciphertext ‖ tag`.

use aes_gcm::aead::consts::U16;
use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::aes::{Aes128, Aes256};
use aes_gcm::{AeadInOut, AesGcm, KeyInit, Nonce, Tag};
use zeroize::Zeroizing;

use super::{IV_LEN, PayloadError, SymmetricKey, TAG_LEN};

/// Decrypts `payload` (`IV ‖ ciphertext ‖ tag`, already base64-decoded)
/// with `k` (AES-128 or AES-256 by its length).
///
/// # Errors
///
/// [`PayloadError::PayloadTooShort`], or [`PayloadError::Decrypt`] when the
/// tag does not verify.
pub fn decrypt(k: &SymmetricKey, payload: &[u8]) -> Result<Zeroizing<Vec<u8>>, PayloadError> {
    let too_short = || PayloadError::PayloadTooShort(payload.len());
    let (iv, rest) = payload
        .split_first_chunk::<IV_LEN>()
        .ok_or_else(too_short)?;
    let (ciphertext, tag) = rest.split_last_chunk::<TAG_LEN>().ok_or_else(too_short)?;
    let (nonce, tag) = (Nonce::<U16>::from(*iv), Tag::<U16>::from(*tag));
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    let result = match k.as_bytes().len() {
        16 => AesGcm::<Aes128, U16>::new_from_slice(k.as_bytes())
            .map_err(|_| PayloadError::Decrypt)?
            .decrypt_inout_detached(&nonce, b"", InOutBuf::from(buffer.as_mut_slice()), &tag),
        _ => AesGcm::<Aes256, U16>::new_from_slice(k.as_bytes())
            .map_err(|_| PayloadError::Decrypt)?
            .decrypt_inout_detached(&nonce, b"", InOutBuf::from(buffer.as_mut_slice()), &tag),
    };
    result.map_err(|_| PayloadError::Decrypt)?;
    Ok(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_payloads_are_refused_not_panics() {
        let k = SymmetricKey::new(Zeroizing::new(vec![7; 32])).unwrap();
        for n in [0, 15, 16, 31] {
            assert!(matches!(
                decrypt(&k, &vec![0; n]),
                Err(PayloadError::PayloadTooShort(m)) if m == n
            ));
        }
        assert!(matches!(decrypt(&k, &[0; 32]), Err(PayloadError::Decrypt)));
    }
}
