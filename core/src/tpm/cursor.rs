//! The error every parser of outside bytes in keylet-core reports
//! ([`ReadError`]: what was being read, at which byte offset, and how it
//! failed), and the bounds-checked byte reader for what tpm2-protocol 1.2.3
//! does not read: tpm2-tools' file formats (Keylime's PCR blob, little
//! endian; the credential blob) and GetCapability data read tolerantly.
//! TPM structures are read with tpm2-protocol's views through
//! [`super::fields::Fields`], which reports the same error.

use core::fmt;

/// How a read failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadErrorKind {
    /// The input ended: the field needed `needed` bytes, `available` were left.
    Truncated {
        /// Bytes the field needed.
        needed: usize,
        /// Bytes left at the field's offset.
        available: usize,
    },
    /// Bytes were left over after the structure.
    Trailing,
    /// The field's value is not allowed.
    Invalid,
    /// A size or count is above what the TPM specification allows.
    TooLarge {
        /// The largest allowed.
        limit: usize,
        /// The size or count found.
        actual: usize,
    },
    /// A value (algorithm, tag, boolean) that has no meaning there.
    Unknown {
        /// The value found.
        value: u64,
    },
}

/// Input that does not have the expected shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadError {
    /// What was being read (or, for [`ReadErrorKind::Invalid`], what is wrong).
    pub what: &'static str,
    /// Byte offset within the input of the field (or of the first
    /// trailing byte) at fault.
    pub offset: usize,
    /// How it failed.
    pub kind: ReadErrorKind,
}

impl ReadError {
    /// A field at `offset` whose value is not allowed.
    #[must_use]
    pub const fn invalid(what: &'static str, offset: usize) -> Self {
        Self {
            what,
            offset,
            kind: ReadErrorKind::Invalid,
        }
    }

    /// Where the input ended, for a truncation; else the error's offset.
    #[must_use]
    pub const fn end(&self) -> usize {
        match self.kind {
            ReadErrorKind::Truncated { available, .. } => self.offset.saturating_add(available),
            ReadErrorKind::Trailing
            | ReadErrorKind::Invalid
            | ReadErrorKind::TooLarge { .. }
            | ReadErrorKind::Unknown { .. } => self.offset,
        }
    }
}

/// Shown as what it is where it reaches the user unwrapped: a malformed
/// response parameter area. The readers of other inputs (TPMS_ATTEST,
/// TPM2B_PUBLIC, the blobs) turn it into their own errors.
impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed TPM response: {} at parameter byte {}",
            self.what, self.offset
        )
    }
}

impl core::error::Error for ReadError {}

/// A bounds-checked reader over a byte slice that remembers its offset.
/// A read that runs past the end does not move it.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`.
    #[must_use]
    pub const fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// The offset of the next byte to read.
    #[must_use]
    pub const fn offset(&self) -> usize {
        self.pos
    }

    /// The bytes not read yet.
    #[must_use]
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    /// Takes `n` bytes.
    ///
    /// # Errors
    ///
    /// [`ReadErrorKind::Truncated`] naming `what` if fewer than `n` bytes are left.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ReadError> {
        let out = self
            .pos
            .checked_add(n)
            .and_then(|end| Some((end, self.buf.get(self.pos..end)?)));
        let Some((end, out)) = out else {
            return Err(ReadError {
                what,
                offset: self.pos,
                kind: ReadErrorKind::Truncated {
                    needed: n,
                    available: self.buf.len().saturating_sub(self.pos),
                },
            });
        };
        self.pos = end;
        Ok(out)
    }

    /// Takes exactly `N` bytes as an array.
    ///
    /// # Errors
    ///
    /// [`ReadError`] at the end of input.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], ReadError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    /// Reads a u8.
    ///
    /// # Errors
    ///
    /// [`ReadError`] at the end of input.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, ReadError> {
        Ok(u8::from_be_bytes(self.array(what)?))
    }

    /// Reads a big-endian u16.
    ///
    /// # Errors
    ///
    /// [`ReadError`] at the end of input.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, ReadError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    /// Reads a big-endian u32.
    ///
    /// # Errors
    ///
    /// [`ReadError`] at the end of input.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, ReadError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// Reads a little-endian u16 (tpm2-tools memory dumps).
    ///
    /// # Errors
    ///
    /// [`ReadError`] at the end of input.
    pub fn u16_le(&mut self, what: &'static str) -> Result<u16, ReadError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    /// Reads a little-endian u32 (tpm2-tools memory dumps).
    ///
    /// # Errors
    ///
    /// [`ReadError`] at the end of input.
    pub fn u32_le(&mut self, what: &'static str) -> Result<u32, ReadError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// Reads a TPMS_PCR_SELECTION: `(hash alg id, bitmap bytes)`.
    ///
    /// # Errors
    ///
    /// [`ReadError`] if it runs past the end.
    pub fn pcr_selection(&mut self, what: &'static str) -> Result<(u16, &'a [u8]), ReadError> {
        let alg = self.u16(what)?;
        let n = self.u8(what)?;
        Ok((alg, self.take(usize::from(n), what)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_reports_offsets() {
        let mut c = Cursor::new(&[0x12, 0x34, 0x00, 0x02, 0xaa, 0xbb, 0xcc]);
        assert_eq!(c.u16("a"), Ok(0x1234));
        assert_eq!(c.u16_le("b"), Ok(0x0200));
        assert_eq!(c.take(2, "c"), Ok(&[0xaa, 0xbb][..]));
        assert_eq!(c.offset(), 6);
        let short = c.u16("d").unwrap_err();
        assert_eq!(
            short,
            ReadError {
                what: "d",
                offset: 6,
                kind: ReadErrorKind::Truncated {
                    needed: 2,
                    available: 1
                }
            }
        );
        assert_eq!(short.end(), 7);
        // A failed read does not move the cursor.
        assert_eq!(c.u8("e"), Ok(0xcc));
        assert_eq!(c.rest(), &[] as &[u8]);
    }

    #[test]
    fn little_endian_and_selections() {
        let mut c = Cursor::new(&[0x34, 0x12, 0, 0x0b, 3, 1, 2, 3]);
        assert_eq!(c.u16_le("a"), Ok(0x1234));
        assert_eq!(c.pcr_selection("b"), Ok((0x000b, &[1, 2, 3][..])));
    }

    #[test]
    fn huge_sizes_do_not_overflow() {
        let mut c = Cursor::new(&[0xff, 0xff]);
        assert!(c.take(usize::MAX, "b").is_err());
    }
}
