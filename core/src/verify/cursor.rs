//! A bounds-checked reader over big-endian TPM marshalling that remembers
//! its byte offset, so every parse error can say where the input went wrong.

/// Why a [`Cursor`] read failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CursorError {
    /// The input ended at `offset` while `needed` more bytes were expected.
    Truncated { offset: usize, needed: usize },
    /// Input was left over from `offset` on.
    Trailing { offset: usize },
}

/// A read position inside one input buffer.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`.
    pub(crate) const fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// The offset of the next byte to read.
    pub(crate) const fn offset(&self) -> usize {
        self.pos
    }

    /// Takes the next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], CursorError> {
        let end = self.pos.checked_add(n);
        let out = end.and_then(|end| self.buf.get(self.pos..end));
        match (out, end) {
            (Some(out), Some(end)) => {
                self.pos = end;
                Ok(out)
            }
            _ => Err(CursorError::Truncated {
                offset: self.buf.len(),
                needed: n,
            }),
        }
    }

    /// Takes exactly `N` bytes as an array.
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], CursorError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// A big-endian u8.
    pub(crate) fn u8(&mut self) -> Result<u8, CursorError> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    /// A big-endian u16.
    pub(crate) fn u16(&mut self) -> Result<u16, CursorError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// A big-endian u32.
    pub(crate) fn u32(&mut self) -> Result<u32, CursorError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A big-endian u64.
    pub(crate) fn u64(&mut self) -> Result<u64, CursorError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A little-endian u16 (tpm2-tools memory dumps).
    pub(crate) fn u16_le(&mut self) -> Result<u16, CursorError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// A little-endian u32 (tpm2-tools memory dumps).
    pub(crate) fn u32_le(&mut self) -> Result<u32, CursorError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A TPM2B: a u16 size followed by that many bytes; returns the content.
    pub(crate) fn tpm2b(&mut self) -> Result<&'a [u8], CursorError> {
        let size = self.u16()?;
        self.take(usize::from(size))
    }

    /// Succeeds only if every byte has been read.
    pub(crate) fn finish(&self) -> Result<(), CursorError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(CursorError::Trailing { offset: self.pos })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian_and_reports_offsets() {
        let mut c = Cursor::new(&[0x12, 0x34, 0x00, 0x02, 0xaa, 0xbb, 0xcc]);
        assert_eq!(c.u16(), Ok(0x1234));
        assert_eq!(c.tpm2b(), Ok(&[0xaa, 0xbb][..]));
        assert_eq!(c.offset(), 6);
        assert_eq!(c.finish(), Err(CursorError::Trailing { offset: 6 }));
        assert_eq!(
            c.u16(),
            Err(CursorError::Truncated {
                offset: 7,
                needed: 2
            })
        );
        // A failed read does not move the cursor.
        assert_eq!(c.u8(), Ok(0xcc));
        assert_eq!(c.finish(), Ok(()));
    }

    #[test]
    fn huge_sizes_do_not_overflow() {
        let mut c = Cursor::new(&[0xff, 0xff]);
        assert!(c.tpm2b().is_err());
        assert!(c.take(usize::MAX).is_err());
    }
}
