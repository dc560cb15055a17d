//! TPM response codes, decoded from the raw `u32` so that a vendor or
//! resource-manager code is still reported (tpm2-protocol's `TpmRc` refuses
//! those); the names of the TPM's own codes are tpm2-protocol's.

use core::fmt;

use tpm2_protocol::data::TpmRcBase;

/// Where a format-1 response code points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RcLocation {
    /// The n-th parameter (1-based).
    Parameter(u8),
    /// The n-th handle (1-based).
    Handle(u8),
    /// The n-th session (1-based).
    Session(u8),
}

impl fmt::Display for RcLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Parameter(n) => write!(f, "parameter {n}"),
            Self::Handle(n) => write!(f, "handle {n}"),
            Self::Session(n) => write!(f, "session {n}"),
        }
    }
}

/// A raw TPM response code (`responseCode` at bytes 6..10 of a response).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResponseCode(pub u32);

impl ResponseCode {
    /// TPM_RC_SUCCESS.
    pub const SUCCESS: Self = Self(0);
    /// TPM_RC_RETRY: the TPM was busy; send the same command again.
    pub const RETRY: Self = Self(TpmRcBase::Retry.value());
    /// TPM_RC_YIELDED: the TPM suspended the command; send it again.
    pub const YIELDED: Self = Self(TpmRcBase::Yielded.value());
    /// TPM_RC_TESTING: the TPM is self-testing; send the command again later.
    pub const TESTING: Self = Self(TpmRcBase::Testing.value());
    /// TPM_RC_HANDLE (format 1, without location bits).
    pub const HANDLE: Self = Self(TpmRcBase::Handle.value());
    /// TPM_RC_OBJECT_MEMORY: no free transient object slot.
    pub const OBJECT_MEMORY: Self = Self(TpmRcBase::ObjectMemory.value());
    /// TPM_RC_SESSION_MEMORY: no free session slot.
    pub const SESSION_MEMORY: Self = Self(TpmRcBase::SessionMemory.value());

    /// Whether this is TPM_RC_SUCCESS.
    #[must_use]
    pub const fn is_success(self) -> bool {
        self.0 == 0
    }

    /// Whether the same command should simply be sent again.
    #[must_use]
    pub const fn is_retryable(self) -> bool {
        self.0 == Self::RETRY.0 || self.0 == Self::YIELDED.0 || self.0 == Self::TESTING.0
    }

    /// Whether this is a format-1 code (it names a parameter, handle or session).
    #[must_use]
    pub const fn is_format_one(self) -> bool {
        self.layer() == 0 && self.0 & 0x80 != 0
    }

    /// The software layer that produced the code (bits 16..23): 0 for the TPM
    /// itself, non-zero for a resource manager or TSS layer.
    #[must_use]
    pub const fn layer(self) -> u8 {
        ((self.0 >> 16) & 0xFF) as u8
    }

    /// The code without its location bits: for format 1, `0x080 | error`;
    /// otherwise the low 12 bits.
    #[must_use]
    pub const fn base(self) -> Self {
        if self.is_format_one() {
            Self(0x80 | (self.0 & 0x3F))
        } else {
            Self(self.0 & 0xFFF)
        }
    }

    /// The parameter, handle or session a format-1 code points at.
    #[must_use]
    pub const fn location(self) -> Option<RcLocation> {
        if !self.is_format_one() {
            return None;
        }
        let n = ((self.0 >> 8) & 0xF) as u8;
        if self.0 & 0x40 != 0 {
            Some(RcLocation::Parameter(n))
        } else if n & 0x8 != 0 {
            Some(RcLocation::Session(n & 0x7))
        } else if n != 0 {
            Some(RcLocation::Handle(n))
        } else {
            None
        }
    }

    /// Whether the code is vendor-defined (format 0 with the vendor bit).
    #[must_use]
    pub const fn is_vendor(self) -> bool {
        !self.is_format_one() && self.0 & 0x500 == 0x500
    }

    /// The TCG name of the code (tpm2-protocol's table), if it is one
    /// the TPM itself defines; its `Display` is the name.
    #[must_use]
    pub fn name(self) -> Option<TpmRcBase> {
        if self.layer() != 0 || self.is_vendor() {
            return None;
        }
        TpmRcBase::try_from(self.base().0).ok()
    }

    /// What the code means for the operator, for the codes with an obvious
    /// remedy: the one table of response codes keylet acts on.
    #[must_use]
    pub fn class(self) -> Option<RcClass> {
        use TpmRcBase as B;
        if self.layer() != 0 || self.is_vendor() {
            return None;
        }
        let base = self.base().0;
        let is = |b: B| base == b.value();
        Some(
            if is(B::ObjectMemory)
                || is(B::SessionMemory)
                || is(B::SessionHandles)
                || is(B::ObjectHandles)
            {
                RcClass::OutOfSlots
            } else if is(B::Lockout) {
                RcClass::Lockout
            } else if is(B::Initialize) {
                RcClass::NotStarted
            } else if is(B::Handle) {
                RcClass::NoSuchHandle
            } else if is(B::Key) || is(B::Integrity) {
                RcClass::ForeignKey
            } else if is(B::Failure) {
                RcClass::FailureMode
            } else if is(B::BadAuth) || is(B::AuthFail) {
                RcClass::BadAuth
            } else {
                return None;
            },
        )
    }

    /// A short hint for the operator, for codes with an obvious remedy.
    #[must_use]
    pub fn hint(self) -> Option<&'static str> {
        self.class().map(RcClass::hint)
    }
}

/// The groups of response codes keylet gives the operator a remedy for
/// ([`ResponseCode::class`]). The host-side remedy (device paths, swtpm
/// flags) is the shell's; what the TPM means is here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RcClass {
    /// No free transient object or session slot (TPM_RC_OBJECT_MEMORY,
    /// _SESSION_MEMORY, _SESSION_HANDLES, _OBJECT_HANDLES).
    OutOfSlots,
    /// Dictionary-attack lockout (TPM_RC_LOCKOUT).
    Lockout,
    /// TPM2_Startup was not sent (TPM_RC_INITIALIZE).
    NotStarted,
    /// The handle does not exist on this TPM (TPM_RC_HANDLE).
    NoSuchHandle,
    /// A key blob the TPM cannot use (TPM_RC_KEY, TPM_RC_INTEGRITY).
    ForeignKey,
    /// The TPM is in failure mode (TPM_RC_FAILURE).
    FailureMode,
    /// A password or HMAC was wrong (TPM_RC_BAD_AUTH, TPM_RC_AUTH_FAIL).
    BadAuth,
}

impl RcClass {
    /// What the code means and what to do, in the TPM's own terms.
    #[must_use]
    pub const fn hint(self) -> &'static str {
        match self {
            Self::OutOfSlots => {
                "the TPM is out of slots; flush leftover transient objects and sessions"
            }
            Self::Lockout => {
                "the TPM is in dictionary-attack lockout and refuses DA-protected keys"
            }
            Self::NotStarted => "the TPM was not started; send TPM2_Startup",
            Self::NoSuchHandle => "the handle does not exist on this TPM",
            Self::ForeignKey => "the key was created on another TPM or its blob is damaged",
            Self::FailureMode => "the TPM is in failure mode; it needs a reset",
            Self::BadAuth => {
                "the authorization value (a hierarchy's or an object's password) is wrong"
            }
        }
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)?;
        if let Some(name) = self.name() {
            write!(f, " ({name}")?;
            if let Some(loc) = self.location() {
                write!(f, " on {loc}")?;
            }
            f.write_str(")")?;
        } else if self.layer() != 0 {
            write!(f, " (from software layer {})", self.layer())?;
        } else if self.is_vendor() {
            f.write_str(" (vendor-defined)")?;
        }
        if let Some(hint) = self.hint() {
            write!(f, ": {hint}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn format_one_parameter_and_handle_and_session() {
        let p = ResponseCode(0x2C4); // TPM_RC_VALUE on parameter 2
        assert_eq!(p.base(), ResponseCode(0x084));
        assert_eq!(p.location(), Some(RcLocation::Parameter(2)));
        let h = ResponseCode(0x18B); // TPM_RC_HANDLE on handle 1
        assert_eq!(h.location(), Some(RcLocation::Handle(1)));
        assert_eq!(h.base(), ResponseCode::HANDLE);
        let s = ResponseCode(0x98E); // TPM_RC_AUTH_FAIL on session 1
        assert_eq!(s.location(), Some(RcLocation::Session(1)));
        assert_eq!(s.name(), Some(TpmRcBase::AuthFail));
    }

    #[test]
    fn retryable_codes() {
        for rc in [0x922, 0x908, 0x90A] {
            assert!(ResponseCode(rc).is_retryable());
        }
        assert!(!ResponseCode(0x902).is_retryable());
        assert!(!ResponseCode(0x18B).is_retryable());
        assert!(!ResponseCode(0x901).is_format_one());
    }

    #[test]
    fn classes_and_hints() {
        for rc in [0x902, 0x903, 0x905, 0x906] {
            assert_eq!(
                ResponseCode(rc).class(),
                Some(RcClass::OutOfSlots),
                "{rc:#x}"
            );
        }
        assert_eq!(ResponseCode(0x921).class(), Some(RcClass::Lockout));
        assert_eq!(ResponseCode(0x100).class(), Some(RcClass::NotStarted));
        assert_eq!(ResponseCode(0x18B).class(), Some(RcClass::NoSuchHandle));
        assert_eq!(ResponseCode(0x08B).class(), Some(RcClass::NoSuchHandle));
        assert_eq!(ResponseCode(0x1DF).class(), Some(RcClass::ForeignKey));
        assert_eq!(ResponseCode(0x09C).class(), Some(RcClass::ForeignKey));
        assert_eq!(ResponseCode(0x101).class(), Some(RcClass::FailureMode));
        assert_eq!(ResponseCode(0x922).class(), None);
        assert_eq!(
            ResponseCode(0x000B_0902).class(),
            None,
            "a resource manager's code"
        );
        let mut text = heapless::String::<128>::new();
        core::fmt::write(&mut text, format_args!("{}", ResponseCode(0x902))).unwrap();
        assert!(text.contains("out of slots"), "{text}");
    }

    #[test]
    fn unknown_codes_still_decode() {
        let rm = ResponseCode(0x000B_0101);
        assert_eq!(rm.layer(), 0x0B);
        assert_eq!(rm.name(), None);
        assert!(!rm.is_format_one());
        let vendor = ResponseCode(0x500);
        assert!(vendor.is_vendor());
        assert_eq!(vendor.name(), None);
    }
}
