//! The one bounds-checked reader of TPM marshalling in keylet-core, and the
//! error it reports: what was being read, at which byte offset, and how it
//! failed. Every parser of outside bytes (response parameters, TPMS_ATTEST,
//! TPMT_SIGNATURE, TPM2B_PUBLIC, the credential and PCR blobs) reads through
//! it; their own errors are built from [`ReadError`].

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
            ReadErrorKind::Trailing | ReadErrorKind::Invalid => self.offset,
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

    /// Reads a big-endian u64.
    ///
    /// # Errors
    ///
    /// [`ReadError`] at the end of input.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, ReadError> {
        Ok(u64::from_be_bytes(self.array(what)?))
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

    /// Reads a u8 that must be 0 or 1 (a TPMI_YES_NO).
    ///
    /// # Errors
    ///
    /// [`ReadError`] at the end of input, [`ReadErrorKind::Invalid`] with
    /// `invalid` as its `what` for any other value.
    pub fn yes_no(&mut self, what: &'static str, invalid: &'static str) -> Result<bool, ReadError> {
        let at = self.pos;
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(ReadError::invalid(invalid, at)),
        }
    }

    /// Reads a TPM2B and returns its contents (without the size).
    ///
    /// # Errors
    ///
    /// [`ReadError`] if the size runs past the end.
    pub fn tpm2b(&mut self, what: &'static str) -> Result<&'a [u8], ReadError> {
        let n = self.u16(what)?;
        self.take(usize::from(n), what)
    }

    /// Reads a TPM2B and returns it whole (with its 2-byte size).
    ///
    /// # Errors
    ///
    /// [`ReadError`] if the size runs past the end.
    pub fn tpm2b_whole(&mut self, what: &'static str) -> Result<&'a [u8], ReadError> {
        let start = self.pos;
        self.tpm2b(what)?;
        self.buf
            .get(start..self.pos)
            .ok_or(ReadError::invalid(what, start))
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

    /// Succeeds only if every byte has been read: the one way to say "no
    /// trailing bytes after `what`".
    ///
    /// # Errors
    ///
    /// [`ReadErrorKind::Trailing`] at the first byte left over.
    pub const fn finish(&self, what: &'static str) -> Result<(), ReadError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(ReadError {
                what,
                offset: self.pos,
                kind: ReadErrorKind::Trailing,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian_and_reports_offsets() {
        let mut c = Cursor::new(&[0x12, 0x34, 0x00, 0x02, 0xaa, 0xbb, 0xcc]);
        assert_eq!(c.u16("a"), Ok(0x1234));
        assert_eq!(c.tpm2b("b"), Ok(&[0xaa, 0xbb][..]));
        assert_eq!(c.offset(), 6);
        assert_eq!(
            c.finish("c"),
            Err(ReadError {
                what: "c",
                offset: 6,
                kind: ReadErrorKind::Trailing
            })
        );
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
        assert_eq!(c.finish("f"), Ok(()));
    }

    #[test]
    fn yes_no_and_little_endian() {
        let mut c = Cursor::new(&[1, 0, 2, 0x34, 0x12]);
        assert_eq!(c.yes_no("a", "bad"), Ok(true));
        assert_eq!(c.yes_no("a", "bad"), Ok(false));
        assert_eq!(c.yes_no("a", "bad"), Err(ReadError::invalid("bad", 2)));
        assert_eq!(c.u16_le("b"), Ok(0x1234));
    }

    #[test]
    fn huge_sizes_do_not_overflow() {
        let mut c = Cursor::new(&[0xff, 0xff]);
        assert!(c.tpm2b("a").is_err());
        assert!(c.take(usize::MAX, "b").is_err());
    }
}
