//! Command builders: each fills a `tpm2-protocol` command struct and
//! marshals it into a caller buffer, returning the used part.
//!
//! Key, session and credential commands are in
//! [`command_keys`](super::command_keys).

use core::fmt;

use tpm2_protocol::{
    TpmError, TpmWriter,
    basic::{TpmUint16, TpmUint32},
    data::{
        Tpm2bAuth, Tpm2bData, Tpm2bNonce, TpmAlgId, TpmCap, TpmCc, TpmRh, TpmSt, TpmSu,
        TpmaSession, TpmlDigestValues, TpmlPcrSelection, TpmsAuthCommand, TpmsPcrSelect,
        TpmsPcrSelection, TpmtHa, TpmtSigScheme, TpmuHa,
    },
    frame::{
        TpmCertifyCommand, TpmFlushContextCommand, TpmFrame, TpmGetCapabilityCommand,
        TpmGetRandomCommand, TpmPcrExtendCommand, TpmPcrReadCommand, TpmPcrResetCommand,
        TpmQuoteCommand, TpmStartupCommand, tpm_marshal_command,
    },
};

use super::Handle;
use crate::pcr::{HashAlg, PcrMask};

/// A command that could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError {
    /// The marshaller rejected the command (usually: the buffer is too small).
    Marshal {
        /// The command being built.
        cc: TpmCc,
        /// The marshaller's error.
        error: TpmError,
    },
    /// An argument does not fit its TPM field.
    TooLong {
        /// The command being built.
        cc: TpmCc,
        /// The argument.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The field's capacity.
        max: usize,
    },
    /// An argument is not valid for the command.
    Invalid {
        /// The command being built.
        cc: TpmCc,
        /// What is wrong.
        what: &'static str,
    },
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Marshal { cc, error } => write!(
                f,
                "cannot build {cc}: {error} at byte {} (is the command buffer at least 4096 bytes?)",
                error.offset()
            ),
            Self::TooLong { cc, what, len, max } => {
                write!(
                    f,
                    "cannot build {cc}: {what} is {len} bytes, at most {max} fit"
                )
            }
            Self::Invalid { cc, what } => write!(f, "cannot build {cc}: {what}"),
        }
    }
}

impl core::error::Error for CommandError {}

/// How a handle of a command is authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth<'a> {
    /// A password session (TPM_RS_PW) with this password (usually empty).
    Password(&'a [u8]),
    /// A policy session already satisfied for this command.
    Policy(Handle),
}

impl Auth<'_> {
    /// The empty password.
    pub const EMPTY: Auth<'static> = Auth::Password(&[]);

    pub(crate) fn to_command(self, cc: TpmCc) -> Result<TpmsAuthCommand, CommandError> {
        let (handle, hmac) = match self {
            Self::Password(p) => (TpmRh::Pw.value(), p),
            Self::Policy(h) => (h, &[][..]),
        };
        let hmac = Tpm2bAuth::try_from(hmac).map_err(|_| CommandError::TooLong {
            cc,
            what: "password",
            len: hmac.len(),
            max: 64,
        })?;
        Ok(TpmsAuthCommand {
            session_handle: TpmUint32::new(handle),
            nonce: Tpm2bNonce::default(),
            session_attributes: TpmaSession::CONTINUE_SESSION,
            hmac,
        })
    }
}

/// Marshals `command` with `sessions` into `buf` and returns the frame.
pub(crate) fn marshal<'b, C: TpmFrame>(
    buf: &'b mut [u8],
    command: &C,
    sessions: &[TpmsAuthCommand],
) -> Result<&'b [u8], CommandError> {
    let cc = command.cc();
    let tag = if sessions.is_empty() {
        TpmSt::NoSessions
    } else {
        TpmSt::Sessions
    };
    let len = {
        let mut writer = TpmWriter::new(buf);
        tpm_marshal_command(command, tag, sessions, &mut writer)
            .map_err(|error| CommandError::Marshal { cc, error })?;
        writer.len()
    };
    buf.get(..len).ok_or(CommandError::Invalid {
        cc,
        what: "marshalled frame is larger than the buffer",
    })
}

pub(crate) fn alg_id(cc: TpmCc, alg: HashAlg) -> Result<TpmAlgId, CommandError> {
    TpmAlgId::try_from(alg.alg_id()).map_err(|_| CommandError::Invalid {
        cc,
        what: "hash algorithm not known to the marshaller",
    })
}

/// A one-bank TPML_PCR_SELECTION for `mask` in `bank`.
pub(crate) fn pcr_selection(
    cc: TpmCc,
    bank: HashAlg,
    mask: PcrMask,
) -> Result<TpmlPcrSelection, CommandError> {
    let select = mask.select_bytes();
    let sel = TpmsPcrSelection {
        hash: alg_id(cc, bank)?,
        pcr_select: TpmsPcrSelect::try_from(&select[..])
            .map_err(|error| CommandError::Marshal { cc, error })?,
    };
    let mut list = TpmlPcrSelection::default();
    list.try_push(sel)
        .map_err(|error| CommandError::Marshal { cc, error })?;
    Ok(list)
}

/// TPM2_GetRandom for `count` bytes (at most 64, the digest size limit).
///
/// # Errors
///
/// [`CommandError`] if `buf` is too small.
pub fn get_random(buf: &mut [u8], count: u16) -> Result<&[u8], CommandError> {
    let cmd = TpmGetRandomCommand {
        handles: [],
        bytes_requested: TpmUint16::new(count),
    };
    marshal(buf, &cmd, &[])
}

/// TPM2_Startup(TPM_SU_CLEAR): the first command after power-on.
///
/// # Errors
///
/// [`CommandError`] if `buf` is too small.
pub fn startup_clear(buf: &mut [u8]) -> Result<&[u8], CommandError> {
    let cmd = TpmStartupCommand {
        handles: [],
        startup_type: TpmSu::Clear,
    };
    marshal(buf, &cmd, &[])
}

/// TPM2_GetCapability(`capability`, `property`, `count`).
///
/// # Errors
///
/// [`CommandError`] if the capability is unknown to the marshaller or `buf`
/// is too small.
pub fn get_capability(
    buf: &mut [u8],
    capability: u32,
    property: u32,
    count: u32,
) -> Result<&[u8], CommandError> {
    let cc = TpmCc::GetCapability;
    let cmd = TpmGetCapabilityCommand {
        handles: [],
        cap: TpmCap::try_from(capability).map_err(|_| CommandError::Invalid {
            cc,
            what: "unknown capability",
        })?,
        property: TpmUint32::new(property),
        property_count: TpmUint32::new(count),
    };
    marshal(buf, &cmd, &[])
}

/// TPM2_PCR_Read of `mask` in `bank`. The TPM returns at most 8 digests;
/// see [`pcr_read`](super::pcr_read) for the loop.
///
/// # Errors
///
/// [`CommandError`] if `buf` is too small.
pub fn pcr_read(buf: &mut [u8], bank: HashAlg, mask: PcrMask) -> Result<&[u8], CommandError> {
    let cmd = TpmPcrReadCommand {
        handles: [],
        pcr_selection_in: pcr_selection(TpmCc::PcrRead, bank, mask)?,
    };
    marshal(buf, &cmd, &[])
}

/// TPM2_PCR_Reset of PCR `pcr` (password authorization, empty).
///
/// # Errors
///
/// [`CommandError`] if `buf` is too small.
pub fn pcr_reset(buf: &mut [u8], pcr: u8) -> Result<&[u8], CommandError> {
    let cc = TpmCc::PcrReset;
    let cmd = TpmPcrResetCommand {
        handles: [TpmUint32::new(u32::from(pcr))],
    };
    marshal(buf, &cmd, &[Auth::EMPTY.to_command(cc)?])
}

/// TPM2_PCR_Extend of PCR `pcr` in one bank with `digest` (which must be
/// the bank's digest size).
///
/// # Errors
///
/// [`CommandError::Invalid`] if the digest has the wrong size.
pub fn pcr_extend<'b>(
    buf: &'b mut [u8],
    pcr: u8,
    bank: HashAlg,
    digest: &[u8],
) -> Result<&'b [u8], CommandError> {
    let cc = TpmCc::PcrExtend;
    if digest.len() != bank.digest_size() {
        return Err(CommandError::Invalid {
            cc,
            what: "digest size differs from the bank's",
        });
    }
    let d = tpm2_protocol::basic::TpmBuffer::try_from(digest)
        .map_err(|error| CommandError::Marshal { cc, error })?;
    let mut digests = TpmlDigestValues::default();
    digests
        .try_push(TpmtHa {
            hash_alg: alg_id(cc, bank)?,
            digest: TpmuHa::Digest(d),
        })
        .map_err(|error| CommandError::Marshal { cc, error })?;
    let cmd = TpmPcrExtendCommand {
        handles: [TpmUint32::new(u32::from(pcr))],
        digests,
    };
    marshal(buf, &cmd, &[Auth::EMPTY.to_command(cc)?])
}

/// TPM2_Quote with key `ak` (password authorization, empty) over `mask` in
/// `bank`, with `nonce` as qualifyingData and the key's own scheme.
///
/// # Errors
///
/// [`CommandError::TooLong`] if the nonce exceeds 64 bytes.
pub fn quote<'b>(
    buf: &'b mut [u8],
    ak: Handle,
    nonce: &[u8],
    bank: HashAlg,
    mask: PcrMask,
) -> Result<&'b [u8], CommandError> {
    let cc = TpmCc::Quote;
    if nonce.len() > 64 {
        return Err(CommandError::TooLong {
            cc,
            what: "nonce",
            len: nonce.len(),
            max: 64,
        });
    }
    let cmd = TpmQuoteCommand {
        handles: [TpmUint32::new(ak)],
        qualifying_data: Tpm2bData::try_from(nonce)
            .map_err(|error| CommandError::Marshal { cc, error })?,
        in_scheme: TpmtSigScheme::default(),
        pcr_select: pcr_selection(cc, bank, mask)?,
    };
    marshal(buf, &cmd, &[Auth::EMPTY.to_command(cc)?])
}

/// TPM2_Certify: the key `sign` certifies that `object` is loaded in this
/// TPM, with `qualifying` as qualifyingData and the signing key's own scheme
/// (TPM_ALG_NULL). `object` needs ADMIN-role authorization (`object_auth`),
/// `sign` USER-role authorization (`sign_auth`); a key without
/// `adminWithPolicy` and an empty authValue takes [`Auth::EMPTY`] for both.
/// The AK certified by itself is the push model's proof of possession; an
/// IAK certifying an AK uses the same command.
///
/// # Errors
///
/// [`CommandError::TooLong`] if `qualifying` exceeds 64 bytes;
/// [`CommandError::Marshal`] if `buf` is too small.
pub fn certify<'b>(
    buf: &'b mut [u8],
    object: Handle,
    object_auth: Auth<'_>,
    sign: Handle,
    sign_auth: Auth<'_>,
    qualifying: &[u8],
) -> Result<&'b [u8], CommandError> {
    let cc = TpmCc::Certify;
    if qualifying.len() > 64 {
        return Err(CommandError::TooLong {
            cc,
            what: "qualifying data",
            len: qualifying.len(),
            max: 64,
        });
    }
    let cmd = TpmCertifyCommand {
        handles: [TpmUint32::new(object), TpmUint32::new(sign)],
        qualifying_data: Tpm2bData::try_from(qualifying)
            .map_err(|error| CommandError::Marshal { cc, error })?,
        in_scheme: TpmtSigScheme::default(),
    };
    marshal(
        buf,
        &cmd,
        &[object_auth.to_command(cc)?, sign_auth.to_command(cc)?],
    )
}

/// TPM2_FlushContext of a transient object or session.
///
/// # Errors
///
/// [`CommandError`] if `buf` is too small.
pub fn flush_context(buf: &mut [u8], handle: Handle) -> Result<&[u8], CommandError> {
    let cmd = TpmFlushContextCommand {
        handles: [],
        flush_handle: TpmUint32::new(handle),
    };
    marshal(buf, &cmd, &[])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn pcr_read_frame_matches_the_wire_format() {
        let mut buf = [0u8; 64];
        let frame = pcr_read(
            &mut buf,
            HashAlg::Sha256,
            PcrMask::new(0x0001_0400).unwrap(),
        )
        .unwrap();
        assert_eq!(
            frame,
            &[
                0x80, 0x01, 0, 0, 0, 0x14, 0, 0, 0x01, 0x7E, 0, 0, 0, 1, 0, 0x0B, 3, 0x00, 0x04,
                0x01
            ]
        );
    }

    #[test]
    fn quote_rejects_long_nonce_and_small_buffer() {
        let mut buf = [0u8; 4096];
        let long = [0u8; 65];
        assert!(matches!(
            quote(
                &mut buf,
                0x8000_0000,
                &long,
                HashAlg::Sha256,
                PcrMask::EMPTY
            ),
            Err(CommandError::TooLong { .. })
        ));
        let mut small = [0u8; 20];
        assert!(matches!(
            quote(
                &mut small,
                0x8000_0000,
                b"nonce",
                HashAlg::Sha256,
                PcrMask::EMPTY
            ),
            Err(CommandError::Marshal { .. })
        ));
    }

    #[test]
    fn certify_frame_has_two_handles_and_two_password_sessions() {
        let mut buf = [0u8; 128];
        let frame = certify(
            &mut buf,
            0x8000_0001,
            Auth::EMPTY,
            0x8000_0001,
            Auth::EMPTY,
            &[0xAB; 3],
        )
        .unwrap();
        let expected: &[u8] = &[
            0x80, 0x02, 0, 0, 0, 0x2F, 0, 0, 0x01, 0x48, // header, TPM_CC_Certify
            0x80, 0, 0, 1, 0x80, 0, 0, 1, // objectHandle, signHandle
            0, 0, 0, 18, // authorizationSize: two password sessions
            0x40, 0, 0, 9, 0, 0, 1, 0, 0, // TPM_RS_PW, nonce 0, continue, hmac 0
            0x40, 0, 0, 9, 0, 0, 1, 0, 0, //
            0, 3, 0xAB, 0xAB, 0xAB, // qualifyingData
            0, 0x10, // inScheme TPM_ALG_NULL
        ];
        assert_eq!(frame, expected);
        let long = [0u8; 65];
        assert!(matches!(
            certify(&mut buf, 1, Auth::EMPTY, 1, Auth::EMPTY, &long),
            Err(CommandError::TooLong { .. })
        ));
        let mut small = [0u8; 20];
        assert!(matches!(
            certify(&mut small, 1, Auth::EMPTY, 1, Auth::EMPTY, b"x"),
            Err(CommandError::Marshal { .. })
        ));
    }

    #[test]
    fn password_session_layout() {
        let mut buf = [0u8; 64];
        let frame = pcr_reset(&mut buf, 16).unwrap();
        // tag SESSIONS, cc PCR_Reset, handle 16, authSize 9, TPM_RS_PW, nonce 0, attrs 1, hmac 0
        assert_eq!(
            frame,
            &[
                0x80, 0x02, 0, 0, 0, 0x1B, 0, 0, 0x01, 0x3D, 0, 0, 0, 16, 0, 0, 0, 9, 0x40, 0, 0,
                9, 0, 0, 1, 0, 0
            ]
        );
    }
}
