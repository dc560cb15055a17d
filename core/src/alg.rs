//! The key and signature algorithms keylet supports, with Keylime's names.

use core::fmt;

/// The EK key type (`tpm_encryption_alg`); the AK is of the same family
/// (see [`KeyAlg::ak_alg`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyAlg {
    /// RSA-2048 (TCG EK template L-1).
    Rsa2048,
    /// RSA-3072 (TCG EK template H-6).
    Rsa3072,
    /// ECC NIST P-256 (TCG EK template L-2).
    EccP256,
    /// ECC NIST P-384 (TCG EK template H-3).
    EccP384,
    /// ECC NIST P-521 (TCG EK template H-4).
    EccP521,
}

impl KeyAlg {
    /// Every key type, in Keylime's order.
    pub const ALL: [Self; 5] = [
        Self::Rsa2048,
        Self::Rsa3072,
        Self::EccP256,
        Self::EccP384,
        Self::EccP521,
    ];

    /// The name Keylime reports as `enc_alg` / `tpm_enc_alg` for an agent API
    /// version: the family (`rsa`/`ecc`) before 2.5, with the size
    /// (`rsa2048`, `ecc384`, ...) from 2.5 on.
    #[must_use]
    pub const fn keylime_name(self, api_major: u8, api_minor: u8) -> &'static str {
        let explicit = api_major > 2 || (api_major == 2 && api_minor >= 5);
        if !explicit {
            return if self.is_rsa() { "rsa" } else { "ecc" };
        }
        match self {
            Self::Rsa2048 => "rsa2048",
            Self::Rsa3072 => "rsa3072",
            Self::EccP256 => "ecc256",
            Self::EccP384 => "ecc384",
            Self::EccP521 => "ecc521",
        }
    }

    /// The key type for a `tpm_encryption_alg` value, if keylet supports it:
    /// Keylime's names (`rsa` and `ecc` are RSA-2048 and P-256, as in
    /// Keylime) and tpm2-tools' `ecc_nist_p*`.
    #[must_use]
    pub fn from_config_name(name: &str) -> Option<Self> {
        match name {
            "rsa" | "rsa2048" => Some(Self::Rsa2048),
            "rsa3072" => Some(Self::Rsa3072),
            "ecc" | "ecc256" | "ecc_nist_p256" => Some(Self::EccP256),
            "ecc384" | "ecc_nist_p384" => Some(Self::EccP384),
            "ecc521" | "ecc_nist_p521" => Some(Self::EccP521),
            _ => None,
        }
    }

    /// Whether this is an RSA key type.
    #[must_use]
    pub const fn is_rsa(self) -> bool {
        matches!(self, Self::Rsa2048 | Self::Rsa3072)
    }

    /// The AK's key type under an EK of this type: RSA-2048 under an RSA EK,
    /// P-256 under an ECC EK. The EK's size is the manufacturer's choice;
    /// the AK only signs quotes, which the verifier checks whatever its
    /// size, and keylet checks its own quotes with these two.
    #[must_use]
    pub const fn ak_alg(self) -> Self {
        if self.is_rsa() {
            Self::Rsa2048
        } else {
            Self::EccP256
        }
    }

    /// The signature scheme a quote with this key type must use.
    #[must_use]
    pub const fn signing_alg(self) -> SignAlg {
        if self.is_rsa() {
            SignAlg::Rsassa
        } else {
            SignAlg::Ecdsa
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
