//! The key and signature algorithms keylet supports, with Keylime's names.

use core::fmt;

/// The EK/AK key type (`tpm_encryption_alg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyAlg {
    /// RSA-2048 (TCG EK template L-1).
    Rsa2048,
    /// ECC NIST P-256 (TCG EK template L-2).
    EccP256,
}

impl KeyAlg {
    /// The name Keylime reports as `enc_alg` / `tpm_enc_alg` for an agent API version
    /// (`rsa`/`ecc` before 2.5, `rsa2048`/`ecc256` from 2.5 on).
    #[must_use]
    pub const fn keylime_name(self, api_major: u8, api_minor: u8) -> &'static str {
        let explicit = api_major > 2 || (api_major == 2 && api_minor >= 5);
        match (self, explicit) {
            (Self::Rsa2048, true) => "rsa2048",
            (Self::Rsa2048, false) => "rsa",
            (Self::EccP256, true) => "ecc256",
            (Self::EccP256, false) => "ecc",
        }
    }

    /// The key type for a `tpm_encryption_alg` value, if keylet supports it.
    #[must_use]
    pub fn from_config_name(name: &str) -> Option<Self> {
        match name {
            "rsa" | "rsa2048" => Some(Self::Rsa2048),
            "ecc" | "ecc256" | "ecc_nist_p256" => Some(Self::EccP256),
            _ => None,
        }
    }

    /// The signature scheme a quote with this key type must use.
    #[must_use]
    pub const fn signing_alg(self) -> SignAlg {
        match self {
            Self::Rsa2048 => SignAlg::Rsassa,
            Self::EccP256 => SignAlg::Ecdsa,
        }
    }
}

impl fmt::Display for KeyAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keylime_name(2, 6))
    }
}

/// The quote signature scheme (`tpm_signing_alg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignAlg {
    /// RSASSA-PKCS1-v1_5 (TPM_ALG_RSASSA 0x0014).
    Rsassa,
    /// ECDSA (TPM_ALG_ECDSA 0x0018).
    Ecdsa,
}

impl SignAlg {
    /// Keylime's name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Rsassa => "rsassa",
            Self::Ecdsa => "ecdsa",
        }
    }

    /// The TPM algorithm identifier.
    #[must_use]
    pub const fn alg_id(self) -> u16 {
        match self {
            Self::Rsassa => 0x0014,
            Self::Ecdsa => 0x0018,
        }
    }

    /// The scheme for a Keylime name, if keylet supports it.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "rsassa" => Some(Self::Rsassa),
            "ecdsa" => Some(Self::Ecdsa),
            _ => None,
        }
    }
}

impl fmt::Display for SignAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
