//! Lowercase hex into a caller buffer.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Writes lowercase hex of `bytes` into the front of `out`; returns the bytes
/// written, or `None` if `out` is shorter than twice `bytes`.
pub(crate) fn encode_lower(bytes: &[u8], out: &mut [u8]) -> Option<usize> {
    let n = bytes.len().checked_mul(2)?;
    let out = out.get_mut(..n)?;
    for (b, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        if let [hi, lo] = pair {
            *hi = *DIGITS.get(usize::from(b >> 4))?;
            *lo = *DIGITS.get(usize::from(b & 0x0f))?;
        }
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    #[test]
    fn lowercase_pairs() {
        let mut out = [0u8; 6];
        assert_eq!(super::encode_lower(&[0x00, 0xab, 0x9f], &mut out), Some(6));
        assert_eq!(&out, b"00ab9f");
        assert_eq!(super::encode_lower(&[1, 2, 3, 4], &mut out), None);
    }
}
