//! Label values for TPM command codes: snake case, fixed strings.

use keylet_core::tpm::command_name::snake_case;

/// The `command` label of a TPM command code: the commands keylet sends by
/// name, anything else as `other`.
#[must_use]
pub(crate) fn command_name(code: u32) -> &'static str {
    snake_case(code).unwrap_or("other")
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
