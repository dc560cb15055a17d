//! Splitting a response frame into its handle and parameter areas, with the
//! raw response code checked before anything else.

use core::fmt;

use tpm2_protocol::TpmError;
use tpm2_protocol::data::{TpmCc, TpmSt};
use tpm2_protocol::frame::TpmResponse;

use super::rc::ResponseCode;

/// TPM_ST_NO_SESSIONS.
pub const TAG_NO_SESSIONS: u16 = TpmSt::NoSessions.value();
/// TPM_ST_SESSIONS.
pub const TAG_SESSIONS: u16 = TpmSt::Sessions.value();
/// The size of a command or response header.
pub const HEADER_SIZE: usize = 10;

/// A response that could not be split, or that carries an error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseError {
    /// The TPM (or a resource manager) answered with a non-success code.
    Tpm {
        /// The command code of the command that failed.
        cc: u32,
        /// The raw response code.
        rc: ResponseCode,
    },
    /// The response is shorter than its header or than its handle area.
    Truncated {
        /// The command code.
        cc: u32,
        /// Bytes received.
        len: usize,
        /// Bytes needed.
        needed: usize,
    },
    /// `responseSize` does not match the number of bytes received.
    SizeMismatch {
        /// The command code.
        cc: u32,
        /// The size the header declares.
        declared: u32,
        /// Bytes received.
        received: usize,
    },
    /// The tag is neither TPM_ST_NO_SESSIONS nor TPM_ST_SESSIONS.
    BadTag {
        /// The command code.
        cc: u32,
        /// The tag received.
        tag: u16,
    },
    /// `parameterSize` runs past the end of the response.
    BadParameterSize {
        /// The command code.
        cc: u32,
        /// The declared parameter size.
        declared: u32,
        /// Bytes left after the handle area and the size field.
        available: usize,
    },
}

impl ResponseError {
    /// The response code, if the TPM answered with an error code.
    #[must_use]
    pub const fn rc(&self) -> Option<ResponseCode> {
        match self {
            Self::Tpm { rc, .. } => Some(*rc),
            _ => None,
        }
    }
}

/// Writes `TPM2_Name (0x...)` for a command code.
pub(crate) struct CcName(pub u32);

impl fmt::Display for CcName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match TpmCc::try_from(self.0) {
            Ok(cc) => write!(f, "{cc} ({:#x})", self.0),
            Err(_) => write!(f, "command {:#x}", self.0),
        }
    }
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Tpm { cc, rc } => write!(f, "TPM rejected {}: {rc}", CcName(cc)),
            Self::Truncated { cc, len, needed } => write!(
                f,
                "response to {} is truncated: {len} bytes, at least {needed} needed",
                CcName(cc)
            ),
            Self::SizeMismatch {
                cc,
                declared,
                received,
            } => write!(
                f,
                "response to {} declares {declared} bytes but {received} arrived",
                CcName(cc)
            ),
            Self::BadTag { cc, tag } => {
                write!(f, "response to {} has unknown tag {tag:#06x}", CcName(cc))
            }
            Self::BadParameterSize {
                cc,
                declared,
                available,
            } => write!(
                f,
                "response to {} declares {declared} parameter bytes but only {available} follow",
                CcName(cc)
            ),
        }
    }
}

impl core::error::Error for ResponseError {}

/// A successful response, split into its areas. Both slices borrow the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response<'a> {
    /// The command code this answers.
    pub cc: u32,
    /// The response tag.
    pub tag: u16,
    /// The handle area (4 bytes per handle).
    pub handles: &'a [u8],
    /// The parameter area (without parameterSize and without the auth area).
    pub parameters: &'a [u8],
}

impl Response<'_> {
    /// The first handle of the handle area, if there is one.
    #[must_use]
    pub fn handle(&self) -> Option<u32> {
        let b = self.handles.get(..4)?;
        Some(u32::from_be_bytes([
            *b.first()?,
            *b.get(1)?,
            *b.get(2)?,
            *b.get(3)?,
        ]))
    }
}

/// Reads a big-endian u32 at `at`.
pub(crate) fn be_u32(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([
        *b.first()?,
        *b.get(1)?,
        *b.get(2)?,
        *b.get(3)?,
    ]))
}

/// The raw response code at bytes 6..10, if the frame has a full header.
#[must_use]
pub fn raw_rc(frame: &[u8]) -> Option<ResponseCode> {
    be_u32(frame, 6).map(ResponseCode)
}

/// The command code at bytes 6..10 of a command frame.
#[must_use]
pub fn command_code(command: &[u8]) -> u32 {
    be_u32(command, 6).unwrap_or(0)
}

/// The size a command or response header declares at bytes 2..6 (`None`
/// before 6 bytes): how many bytes a transport must read in all.
#[must_use]
pub fn declared_size(header: &[u8]) -> Option<usize> {
    be_u32(header, 2).and_then(|n| usize::try_from(n).ok())
}

/// How many handles the response to command `cc` carries: tpm2-protocol's
/// dispatch table, 0 for a code it does not know.
#[must_use]
pub fn response_handle_count(cc: u32) -> usize {
    // The table itself is private to tpm2-protocol 1.2.3; its public reader
    // is `TpmResponse::validate`, which names the handle area that a
    // header-only success response lacks.
    const EMPTY_SUCCESS: [u8; HEADER_SIZE] = [0x80, 0x01, 0, 0, 0, 10, 0, 0, 0, 0];
    let Ok(cc) = TpmCc::try_from(cc) else {
        return 0;
    };
    match TpmResponse::cast(&EMPTY_SUCCESS).and_then(|r| r.validate(cc)) {
        Err(TpmError::UnexpectedEnd { needed, .. }) => needed / 4,
        _ => 0,
    }
}

/// Checks the response code and splits a response to command `cc`.
///
/// The raw code is read first, so an unknown or vendor code is reported as
/// [`ResponseError::Tpm`] rather than as a parse failure.
///
/// # Errors
///
/// [`ResponseError::Tpm`] for any non-success code; the other variants for
/// a frame whose sizes or tag are inconsistent.
pub fn split(cc: u32, frame: &[u8]) -> Result<Response<'_>, ResponseError> {
    let len = frame.len();
    let (Some(tag_bytes), Some(declared), Some(rc)) =
        (frame.get(..2), be_u32(frame, 2), raw_rc(frame))
    else {
        return Err(ResponseError::Truncated {
            cc,
            len,
            needed: HEADER_SIZE,
        });
    };
    let tag = u16::from_be_bytes([
        tag_bytes.first().copied().unwrap_or(0),
        tag_bytes.get(1).copied().unwrap_or(0),
    ]);
    if usize::try_from(declared).ok() != Some(len) {
        return Err(ResponseError::SizeMismatch {
            cc,
            declared,
            received: len,
        });
    }
    if !rc.is_success() {
        return Err(ResponseError::Tpm { cc, rc });
    }
    let body = frame.get(HEADER_SIZE..).unwrap_or(&[]);
    let handle_bytes = response_handle_count(cc).saturating_mul(4);
    let (Some(handles), Some(rest)) = (body.get(..handle_bytes), body.get(handle_bytes..)) else {
        return Err(ResponseError::Truncated {
            cc,
            len,
            needed: HEADER_SIZE.saturating_add(handle_bytes),
        });
    };
    let parameters = match tag {
        TAG_NO_SESSIONS => rest,
        TAG_SESSIONS => {
            let declared = be_u32(rest, 0).ok_or(ResponseError::Truncated {
                cc,
                len,
                needed: HEADER_SIZE.saturating_add(handle_bytes).saturating_add(4),
            })?;
            let after = rest.get(4..).unwrap_or(&[]);
            usize::try_from(declared)
                .ok()
                .and_then(|n| after.get(..n))
                .ok_or(ResponseError::BadParameterSize {
                    cc,
                    declared,
                    available: after.len(),
                })?
        }
        _ => return Err(ResponseError::BadTag { cc, tag }),
    };
    Ok(Response {
        cc,
        tag,
        handles,
        parameters,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_for_the_transports() {
        let frame = [0x80, 0x01, 0, 0, 0x01, 0x0A, 0, 0, 0x01, 0x58];
        assert_eq!(declared_size(&frame), Some(0x10A));
        assert_eq!(command_code(&frame), 0x158);
        assert_eq!(declared_size(&frame[..5]), None);
        assert_eq!(command_code(&frame[..9]), 0);
    }

    #[test]
    fn handle_counts_come_from_the_command_table() {
        // CreatePrimary, Load, StartAuthSession return one handle.
        for cc in [0x131, 0x157, 0x176] {
            assert_eq!(response_handle_count(cc), 1, "{cc:#x}");
        }
        // Quote, PCR_Read, FlushContext and unknown codes return none.
        for cc in [0x158, 0x17E, 0x165, 0xdead_beef] {
            assert_eq!(response_handle_count(cc), 0, "{cc:#x}");
        }
    }

    #[test]
    fn error_code_wins_over_unknown_values() {
        let frame = [0x80, 0x01, 0, 0, 0, 10, 0x00, 0x0B, 0x01, 0x01];
        let err = split(0x158, &frame).unwrap_err();
        assert_eq!(err.rc(), Some(ResponseCode(0x000B_0101)));
    }

    #[test]
    fn sessions_response_is_cut_at_parameter_size() {
        // StartAuthSession: handle, parameterSize 4, params 00 02 aa bb, then an auth area.
        let frame = [
            0x80, 0x02, 0, 0, 0, 27, 0, 0, 0, 0, 0x03, 0, 0, 0, 0, 0, 0, 4, 0, 2, 0xaa, 0xbb, 0, 0,
            1, 0, 0,
        ];
        let r = split(0x176, &frame).unwrap();
        assert_eq!(r.handle(), Some(0x0300_0000));
        assert_eq!(r.parameters, &[0, 2, 0xaa, 0xbb]);
    }

    #[test]
    fn size_and_parameter_size_are_checked() {
        let frame = [0x80, 0x01, 0, 0, 0, 11, 0, 0, 0, 0];
        assert!(matches!(
            split(0x17B, &frame),
            Err(ResponseError::SizeMismatch { .. })
        ));
        let frame = [0x80, 0x02, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 9, 1, 2];
        assert!(matches!(
            split(0x158, &frame),
            Err(ResponseError::BadParameterSize { declared: 9, .. })
        ));
        assert!(matches!(
            split(0x158, &[0x80]),
            Err(ResponseError::Truncated { .. })
        ));
    }
}
