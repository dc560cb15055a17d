//! Reading TPM structures field by field with tpm2-protocol's borrowed
//! views, keeping what keylet's errors need: the name of the field at fault
//! and its byte offset from the start of the structure.
//!
//! tpm2-protocol validates each value (`TpmField::cast_prefix_field`) and
//! reports offsets relative to the value it was reading; [`Fields`] adds the
//! value's own offset, so a [`ReadError`] points into the caller's bytes.

use tpm2_protocol::{TpmError, TpmField};

use super::cursor::{ReadError, ReadErrorKind};

/// A walk over a marshalled TPM structure, one tpm2-protocol field at a time.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    rest: &'a [u8],
    at: usize,
}

impl<'a> Fields<'a> {
    /// A walk from the start of `buf`.
    #[must_use]
    pub const fn new(buf: &'a [u8]) -> Self {
        Self { rest: buf, at: 0 }
    }

    /// A walk over `buf`, which starts `at` bytes into the structure the
    /// errors should count from.
    #[must_use]
    pub const fn at(buf: &'a [u8], at: usize) -> Self {
        Self { rest: buf, at }
    }

    /// The offset of the next field.
    #[must_use]
    pub const fn offset(&self) -> usize {
        self.at
    }

    /// The bytes not read yet.
    #[must_use]
    pub const fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// Reads the next field as tpm2-protocol's `T` and returns its view.
    ///
    /// # Errors
    ///
    /// [`ReadError`] naming `what`, at the field's offset plus
    /// tpm2-protocol's offset within it.
    pub fn field<T: TpmField<'a> + ?Sized>(
        &mut self,
        what: &'static str,
    ) -> Result<T::View, ReadError> {
        match T::cast_prefix_field(self.rest) {
            Ok((view, rest)) => {
                self.at = self
                    .at
                    .saturating_add(self.rest.len().saturating_sub(rest.len()));
                self.rest = rest;
                Ok(view)
            }
            Err(e) => Err(read_error(e, what, self.at)),
        }
    }

    /// Succeeds only if every byte has been read.
    ///
    /// # Errors
    ///
    /// [`ReadErrorKind::Trailing`] naming `what` at the first byte left over.
    pub const fn finish(&self, what: &'static str) -> Result<(), ReadError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(ReadError {
                what,
                offset: self.at,
                kind: ReadErrorKind::Trailing,
            })
        }
    }
}

/// tpm2-protocol's error for field `what` that starts at `at`, as keylet's.
#[must_use]
pub fn read_error(e: TpmError, what: &'static str, at: usize) -> ReadError {
    let offset = at.saturating_add(e.offset());
    let kind = match e {
        TpmError::UnexpectedEnd {
            needed, available, ..
        } => ReadErrorKind::Truncated { needed, available },
        TpmError::TrailingData { .. } => ReadErrorKind::Trailing,
        TpmError::TooManyBytes { limit, actual, .. }
        | TpmError::TooManyItems { limit, actual, .. } => ReadErrorKind::TooLarge { limit, actual },
        TpmError::VariantNotAvailable { value, .. }
        | TpmError::InvalidBoolean { value, .. }
        | TpmError::InvalidMagicNumber { value, .. }
        | TpmError::InvalidTag { value, .. }
        | TpmError::InvalidCc { value, .. }
        | TpmError::InvalidRc { value, .. }
        | TpmError::IntegerTooLarge { value, .. } => ReadErrorKind::Unknown { value },
        _ => ReadErrorKind::Invalid,
    };
    ReadError { what, offset, kind }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use tpm2_protocol::basic::{TpmUint16, TpmUint32};
    use tpm2_protocol::data::{Tpm2bDigest, TpmAlgId};

    use super::*;

    #[test]
    fn offsets_count_from_the_structure() {
        let buf = [0, 0, 0, 7, 0, 3, 0xaa, 0xbb];
        let mut f = Fields::new(&buf);
        assert_eq!(f.field::<TpmUint32>("a").unwrap().value(), 7);
        let Err(err) = f.field::<Tpm2bDigest>("b") else {
            panic!("a short TPM2B was read");
        };
        assert_eq!(
            err,
            ReadError {
                what: "b",
                offset: 6,
                kind: ReadErrorKind::Truncated {
                    needed: 3,
                    available: 2
                }
            }
        );
        // A failed read does not move the walk.
        assert_eq!(f.offset(), 4);
        assert_eq!(f.field::<TpmUint16>("c").unwrap().value(), 3);
        assert_eq!(f.finish("d").unwrap_err().offset, 6);
    }

    #[test]
    fn unknown_values_and_limits_are_named() {
        let mut f = Fields::at(&[0x7f, 0x7f], 10);
        let err = f.field::<TpmAlgId>("alg").unwrap_err();
        assert_eq!(err.offset, 10);
        assert_eq!(err.kind, ReadErrorKind::Unknown { value: 0x7f7f });
        let mut big = [0u8; 70];
        big[1] = 65;
        let Err(err) = Fields::new(&big).field::<Tpm2bDigest>("d") else {
            panic!("a TPM2B above its capacity was read");
        };
        assert_eq!(
            err.kind,
            ReadErrorKind::TooLarge {
                limit: 64,
                actual: 65
            }
        );
    }
}
