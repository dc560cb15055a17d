//! Label values for TPM command codes: snake case, fixed strings.

use tpm2_protocol::data::TpmCc;

/// The `command` label of a TPM command code: the commands keylet sends by
/// name, anything else as `other`.
#[must_use]
pub fn command_name(code: u32) -> &'static str {
    match TpmCc::try_from(code) {
        Ok(TpmCc::Quote) => "quote",
        Ok(TpmCc::PcrRead) => "pcr_read",
        Ok(TpmCc::PcrExtend) => "pcr_extend",
        Ok(TpmCc::PcrReset) => "pcr_reset",
        Ok(TpmCc::GetCapability) => "get_capability",
        Ok(TpmCc::FlushContext) => "flush_context",
        Ok(TpmCc::CreatePrimary) => "create_primary",
        Ok(TpmCc::Create) => "create",
        Ok(TpmCc::Load) => "load",
        Ok(TpmCc::ReadPublic) => "read_public",
        Ok(TpmCc::StartAuthSession) => "start_auth_session",
        Ok(TpmCc::PolicySecret) => "policy_secret",
        Ok(TpmCc::ActivateCredential) => "activate_credential",
        Ok(TpmCc::MakeCredential) => "make_credential",
        Ok(TpmCc::NvRead) => "nv_read",
        Ok(TpmCc::NvReadPublic) => "nv_read_public",
        Ok(TpmCc::GetRandom) => "get_random",
        Ok(TpmCc::EvictControl) => "evict_control",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_quote_path_and_folds_the_rest() {
        assert_eq!(command_name(0x0000_0158), "quote");
        assert_eq!(command_name(0x0000_017E), "pcr_read");
        assert_eq!(command_name(0x0000_0182), "pcr_extend");
        assert_eq!(command_name(0x0000_013D), "pcr_reset");
        assert_eq!(command_name(0x0000_0165), "flush_context");
        assert_eq!(command_name(0x0000_0145), "other"); // TPM2_Shutdown
        assert_eq!(command_name(0xdead_beef), "other");
    }
}
