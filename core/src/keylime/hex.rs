//! Hex (base16), keylet's one encoder and decoder, on RustCrypto's
//! constant-time `base16ct` (already part of the build through `p256`), so
//! secrets such as auth tags and passwords are converted without
//! data-dependent branches.
//!
//! * [`encode_lower`]: lowercase hex into a caller buffer.
//! * [`Lower`]: lowercase hex as a `Display` value (`Lower(&digest).to_string()`).
//! * [`decode`]: hex of either case into a caller buffer, with an error that
//!   names the offending byte offset.

use core::fmt;

/// Why hex could not be encoded or decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HexError {
    /// The text has an odd number of characters.
    OddLength {
        /// Its length.
        len: usize,
    },
    /// A character is not a hex digit.
    NotHex {
        /// Its byte offset in the text.
        offset: usize,
    },
    /// The output buffer is too short.
    BufferTooSmall {
        /// The bytes needed.
        needed: usize,
        /// The bytes available.
        available: usize,
    },
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OddLength { len } => write!(f, "odd number of hex digits ({len})"),
            Self::NotHex { offset } => write!(f, "not a hex digit at offset {offset}"),
            Self::BufferTooSmall { needed, available } => {
                write!(f, "{needed} bytes do not fit in {available}")
            }
        }
    }
}

impl core::error::Error for HexError {}

/// Writes lowercase hex of `bytes` into the front of `out` and returns it.
///
/// # Errors
///
/// [`HexError::BufferTooSmall`] if `out` is shorter than twice `bytes`.
pub fn encode_lower<'a>(bytes: &[u8], out: &'a mut [u8]) -> Result<&'a str, HexError> {
    let needed = bytes.len().saturating_mul(2);
    let available = out.len();
    base16ct::lower::encode_str(bytes, out)
        .map_err(|_| HexError::BufferTooSmall { needed, available })
}

/// Decodes hex (either case) from `text` into the front of `out` and returns
/// the bytes written.
///
/// # Errors
///
/// [`HexError::OddLength`], [`HexError::NotHex`] with the offset of the first
/// character that is not a hex digit, or [`HexError::BufferTooSmall`].
pub fn decode<'a>(text: &[u8], out: &'a mut [u8]) -> Result<&'a [u8], HexError> {
    if !text.len().is_multiple_of(2) {
        return Err(HexError::OddLength { len: text.len() });
    }
    let needed = text.len() / 2;
    let available = out.len();
    if needed > available {
        return Err(HexError::BufferTooSmall { needed, available });
    }
    base16ct::mixed::decode(text, out).map_err(|_| HexError::NotHex {
        offset: text
            .iter()
            .position(|b| !b.is_ascii_hexdigit())
            .unwrap_or(0),
    })
}

/// Test support: `text` decoded, whitespace ignored (recorded TPM structures
/// written in groups); panics on bad hex.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) fn test_bytes(text: &str) -> heapless::Vec<u8, 256> {
    let digits: heapless::Vec<u8, 512> =
        text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let mut out = [0u8; 256];
    let n = decode(&digits, &mut out).expect("test hex").len();
    out.iter().take(n).copied().collect()
}

/// `bytes` shown as lowercase hex.
#[derive(Debug, Clone, Copy)]
pub struct Lower<'a>(pub &'a [u8]);

impl fmt::Display for Lower<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&base16ct::HexDisplay(self.0), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercase_pairs() {
        let mut out = [0u8; 6];
        assert_eq!(encode_lower(&[0x00, 0xab, 0x9f], &mut out), Ok("00ab9f"));
        assert_eq!(
            encode_lower(&[1, 2, 3, 4], &mut out),
            Err(HexError::BufferTooSmall {
                needed: 8,
                available: 6
            })
        );
    }

    #[test]
    fn decodes_either_case_and_names_the_bad_digit() {
        let mut out = [0u8; 4];
        assert_eq!(decode(b"00aB9F", &mut out), Ok(&[0x00, 0xab, 0x9f][..]));
        assert_eq!(decode(b"", &mut out), Ok(&[][..]));
        assert_eq!(
            decode(b"0a1", &mut out),
            Err(HexError::OddLength { len: 3 })
        );
        assert_eq!(
            decode(b"0a1g", &mut out),
            Err(HexError::NotHex { offset: 3 })
        );
        assert_eq!(decode(b"+1", &mut out), Err(HexError::NotHex { offset: 0 }));
        assert_eq!(
            decode(b"0102030405", &mut out),
            Err(HexError::BufferTooSmall {
                needed: 5,
                available: 4
            })
        );
    }

    #[test]
    fn display_is_lowercase() {
        let mut text = heapless::String::<8>::new();
        let _ = fmt::write(&mut text, format_args!("{}", Lower(&[0xde, 0xad, 0x01])));
        assert_eq!(text.as_str(), "dead01");
    }
}
