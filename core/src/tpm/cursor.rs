//! A bounds-checked cursor over a response parameter area, and the error it
//! reports: what was being read and at which byte offset.

use core::fmt;

/// A parameter area that does not have the expected shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadError {
    /// What was being read.
    pub what: &'static str,
    /// Byte offset within the parameter area where reading failed.
    pub offset: usize,
}

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

/// A bounds-checked big-endian reader over a byte slice.
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

    /// The current offset.
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
    /// [`ReadError`] naming `what` if fewer than `n` bytes are left.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ReadError> {
        let err = ReadError {
            what,
            offset: self.pos,
        };
        let end = self.pos.checked_add(n).ok_or(err)?;
        let out = self.buf.get(self.pos..end).ok_or(err)?;
        self.pos = end;
        Ok(out)
    }

    /// Reads a u8.
    ///
    /// # Errors
    ///
    /// [`ReadError`] at the end of input.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, ReadError> {
        let b = self.take(1, what)?;
        b.first().copied().ok_or(ReadError { what, offset: 0 })
    }

    /// Reads a big-endian u16.
    ///
    /// # Errors
    ///
    /// [`ReadError`] at the end of input.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, ReadError> {
        let b = self.take(2, what)?;
        let mut a = [0u8; 2];
        a.copy_from_slice(b);
        Ok(u16::from_be_bytes(a))
    }

    /// Reads a big-endian u32.
    ///
    /// # Errors
    ///
    /// [`ReadError`] at the end of input.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, ReadError> {
        let b = self.take(4, what)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_be_bytes(a))
    }

    /// Reads a big-endian u64.
    ///
    /// # Errors
    ///
    /// [`ReadError`] at the end of input.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, ReadError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
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
        self.buf.get(start..self.pos).ok_or(ReadError {
            what,
            offset: start,
        })
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
