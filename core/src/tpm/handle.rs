//! Handle ranges: which kind of entity a handle names (its top byte, the
//! TPM_HT), the first handle of each range, and reading a persistent handle
//! an operator wrote in hex.

use tpm2_protocol::data::TpmHt;

use super::Handle;

/// The first handle of the range of handle type `ht`.
const fn first(ht: TpmHt) -> Handle {
    (ht.value() as Handle) << 24
}

/// The first handle of the NV-index range.
pub const NV_INDEX_FIRST: Handle = first(TpmHt::NvIndex);
/// The first handle of the loaded-session (HMAC) range.
pub const LOADED_SESSION_FIRST: Handle = first(TpmHt::HmacSession);
/// The first handle of the policy/saved-session range.
pub const POLICY_SESSION_FIRST: Handle = first(TpmHt::PolicySession);
/// The first handle of the transient-object range.
pub const TRANSIENT_FIRST: Handle = first(TpmHt::Transient);
/// The first handle of the persistent-object range.
pub const PERSISTENT_FIRST: Handle = first(TpmHt::Persistent);
/// The last handle of the persistent-object range.
pub const PERSISTENT_LAST: Handle = PERSISTENT_FIRST | 0x00FF_FFFF;

/// Whether `h` names a persistent object (TPM_HT_PERSISTENT).
#[must_use]
pub const fn is_persistent(h: Handle) -> bool {
    h >> 24 == PERSISTENT_FIRST >> 24
}

/// Reads a persistent handle written in hex, with or without a `0x` prefix
/// (`0x81010001`, `81010001`): `None` for anything else, including a valid
/// handle of another range.
#[must_use]
pub fn parse_persistent(s: &str) -> Option<Handle> {
    let hex = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if hex.is_empty() || hex.len() > 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Handle::from_str_radix(hex, 16)
        .ok()
        .filter(|h| is_persistent(*h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(PERSISTENT_FIRST, 0x8100_0000);
        assert_eq!(PERSISTENT_LAST, 0x81FF_FFFF);
        assert_eq!(TRANSIENT_FIRST, 0x8000_0000);
        assert_eq!(NV_INDEX_FIRST, 0x0100_0000);
        assert!(is_persistent(0x8101_0001));
        assert!(!is_persistent(0x8000_0001));
        assert!(!is_persistent(0x0181_0000));
    }

    #[test]
    fn persistent_handles_in_hex() {
        assert_eq!(parse_persistent("0x81010001"), Some(0x8101_0001));
        assert_eq!(parse_persistent("0X81020000"), Some(0x8102_0000));
        assert_eq!(parse_persistent("81ffffff"), Some(0x81FF_FFFF));
        for bad in [
            "",
            "0x",
            "0x80000001",
            "0x01c00002",
            "0x0x81010001",
            "+81010001",
            "0x810100010",
            "generate",
            "0x8101000g",
        ] {
            assert_eq!(parse_persistent(bad), None, "{bad:?}");
        }
    }
}
