//! The commands keylet sends, by their snake-case names (metric labels,
//! logs): fixed strings, so a caller never formats a command code itself.

use tpm2_protocol::data::TpmCc;

/// The snake-case name of a command keylet sends; `None` for any other
/// code.
#[must_use]
pub fn snake_case(code: u32) -> Option<&'static str> {
    Some(match TpmCc::try_from(code).ok()? {
        TpmCc::Quote => "quote",
        TpmCc::PcrRead => "pcr_read",
        TpmCc::PcrExtend => "pcr_extend",
        TpmCc::PcrReset => "pcr_reset",
        TpmCc::GetCapability => "get_capability",
        TpmCc::FlushContext => "flush_context",
        TpmCc::CreatePrimary => "create_primary",
        TpmCc::Create => "create",
        TpmCc::Load => "load",
        TpmCc::ReadPublic => "read_public",
        TpmCc::StartAuthSession => "start_auth_session",
        TpmCc::PolicySecret => "policy_secret",
        TpmCc::ActivateCredential => "activate_credential",
        TpmCc::MakeCredential => "make_credential",
        TpmCc::NvRead => "nv_read",
        TpmCc::NvReadPublic => "nv_read_public",
        TpmCc::GetRandom => "get_random",
        TpmCc::EvictControl => "evict_control",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_commands_keylet_sends() {
        assert_eq!(snake_case(0x0000_0158), Some("quote"));
        assert_eq!(snake_case(0x0000_0165), Some("flush_context"));
        assert_eq!(snake_case(0x0000_0145), None); // TPM2_Shutdown
        assert_eq!(snake_case(0xdead_beef), None);
    }
}
