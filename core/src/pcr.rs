//! Hash banks, PCR masks and PCR values.
//!
//! These are the few types every other module shares: the TPM side reads
//! [`PcrValues`], the Keylime side encodes them, the verifier hashes them.

use core::fmt;

/// The largest digest any supported bank produces (SHA-512).
pub const MAX_DIGEST_SIZE: usize = 64;

/// The number of PCRs Keylime can select (0..=23).
pub const PCR_COUNT: usize = 24;

/// The data PCR Keylime binds the agent's payload key to.
pub const DATA_PCR: u8 = 16;

/// A PCR bank / quote hash algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashAlg {
    /// TPM_ALG_SHA1 (0x0004).
    Sha1,
    /// TPM_ALG_SHA256 (0x000B).
    Sha256,
    /// TPM_ALG_SHA384 (0x000C).
    Sha384,
    /// TPM_ALG_SHA512 (0x000D).
    Sha512,
}

impl HashAlg {
    /// The TPM algorithm identifier.
    #[must_use]
    pub const fn alg_id(self) -> u16 {
        match self {
            Self::Sha1 => 0x0004,
            Self::Sha256 => 0x000B,
            Self::Sha384 => 0x000C,
            Self::Sha512 => 0x000D,
        }
    }

    /// The algorithm for a TPM algorithm identifier, if supported.
    #[must_use]
    pub const fn from_alg_id(id: u16) -> Option<Self> {
        match id {
            0x0004 => Some(Self::Sha1),
            0x000B => Some(Self::Sha256),
            0x000C => Some(Self::Sha384),
            0x000D => Some(Self::Sha512),
            _ => None,
        }
    }

    /// The digest size in bytes.
    #[must_use]
    pub const fn digest_size(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// The name Keylime uses (`tpm_hash_alg`, `hash_alg`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    /// The algorithm for a Keylime name (`sha256`, ...).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha1" => Some(Self::Sha1),
            "sha256" => Some(Self::Sha256),
            "sha384" => Some(Self::Sha384),
            "sha512" => Some(Self::Sha512),
            _ => None,
        }
    }

    /// Hashes the concatenation of `parts` with this algorithm.
    #[must_use]
    pub fn hash_parts(self, parts: &[&[u8]]) -> Digest {
        fn run<D: sha2::Digest>(parts: &[&[u8]]) -> Digest {
            let mut h = D::new();
            for p in parts {
                h.update(p);
            }
            Digest::from_slice(&h.finalize()).unwrap_or_default()
        }
        match self {
            Self::Sha1 => run::<sha1::Sha1>(parts),
            Self::Sha256 => run::<sha2::Sha256>(parts),
            Self::Sha384 => run::<sha2::Sha384>(parts),
            Self::Sha512 => run::<sha2::Sha512>(parts),
        }
    }

    /// Hashes `data` with this algorithm.
    #[must_use]
    pub fn hash(self, data: &[u8]) -> Digest {
        self.hash_parts(&[data])
    }
}

impl fmt::Display for HashAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One PCR value (or any digest of a supported bank), stored inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    len: u8,
    bytes: [u8; MAX_DIGEST_SIZE],
}

impl Default for Digest {
    fn default() -> Self {
        Self {
            len: 0,
            bytes: [0; MAX_DIGEST_SIZE],
        }
    }
}

impl Digest {
    /// Copies `bytes` into a digest; `None` if longer than [`MAX_DIGEST_SIZE`].
    #[must_use]
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut d = Self::default();
        d.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        d.len = u8::try_from(bytes.len()).ok()?;
        Some(d)
    }

    /// The digest bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

impl AsRef<[u8]> for Digest {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A set of PCRs 0..=23 as a bitmask (bit *i* = PCR *i*), as Keylime's `mask`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct PcrMask(u32);

/// A mask selected a PCR above 23.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcrOutOfRange {
    /// The offending mask.
    pub mask: u32,
}

impl fmt::Display for PcrOutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PCR mask {:#x} selects a PCR above 23", self.mask)
    }
}

impl core::error::Error for PcrOutOfRange {}

impl PcrMask {
    /// The empty selection.
    pub const EMPTY: Self = Self(0);

    /// A mask of PCRs 0..=23.
    ///
    /// # Errors
    ///
    /// [`PcrOutOfRange`] if a bit at or above 24 is set.
    pub const fn new(mask: u32) -> Result<Self, PcrOutOfRange> {
        if mask >> PCR_COUNT == 0 {
            Ok(Self(mask))
        } else {
            Err(PcrOutOfRange { mask })
        }
    }

    /// The raw bits.
    #[must_use]
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// This mask plus PCR `pcr` (ignored if above 23).
    #[must_use]
    pub const fn with(self, pcr: u8) -> Self {
        if (pcr as usize) < PCR_COUNT {
            Self(self.0 | (1 << pcr))
        } else {
            self
        }
    }

    /// Whether PCR `pcr` is selected.
    #[must_use]
    pub const fn contains(self, pcr: u8) -> bool {
        (pcr as usize) < PCR_COUNT && self.0 & (1 << pcr) != 0
    }

    /// How many PCRs are selected.
    #[must_use]
    pub const fn count(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The selected PCR numbers in ascending order.
    pub fn iter(self) -> impl Iterator<Item = u8> {
        (0..24u8).filter(move |&i| self.contains(i))
    }

    /// The 3-byte TPMS_PCR_SELECT bitmap (byte 0 = PCR 0..7, bit 0 = PCR 0).
    #[must_use]
    pub const fn select_bytes(self) -> [u8; 3] {
        let b = self.0.to_le_bytes();
        [b[0], b[1], b[2]]
    }

    /// The mask of a 3-byte (or shorter) TPMS_PCR_SELECT bitmap.
    ///
    /// # Errors
    ///
    /// [`PcrOutOfRange`] if the bitmap is longer than 3 bytes and selects a PCR above 23.
    pub fn from_select_bytes(select: &[u8]) -> Result<Self, PcrOutOfRange> {
        let mut le = [0u8; 4];
        for (i, b) in select.iter().enumerate() {
            match le.get_mut(i) {
                Some(slot) if i < 3 => *slot = *b,
                _ if *b != 0 => return Err(PcrOutOfRange { mask: u32::MAX }),
                _ => {}
            }
        }
        Self::new(u32::from_le_bytes(le))
    }
}

/// The values of the selected PCRs of one bank, in ascending PCR order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrValues {
    bank: HashAlg,
    mask: PcrMask,
    digests: heapless::Vec<Digest, PCR_COUNT>,
}

/// Why a PCR value could not be added to [`PcrValues`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PcrValuesError {
    /// The PCR is not in the selection, or was already set.
    Unexpected {
        /// The PCR number.
        pcr: u8,
    },
    /// The digest is not the bank's digest size.
    WrongSize {
        /// The PCR number.
        pcr: u8,
        /// The size received.
        size: usize,
    },
}

impl fmt::Display for PcrValuesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unexpected { pcr } => {
                write!(f, "PCR {pcr} was not requested or came twice")
            }
            Self::WrongSize { pcr, size } => {
                write!(f, "PCR {pcr} has a {size}-byte digest, not the bank's size")
            }
        }
    }
}

impl core::error::Error for PcrValuesError {}

impl PcrValues {
    /// An empty set of values for `mask` in `bank`.
    #[must_use]
    pub fn new(bank: HashAlg, mask: PcrMask) -> Self {
        Self {
            bank,
            mask,
            digests: heapless::Vec::new(),
        }
    }

    /// The bank.
    #[must_use]
    pub const fn bank(&self) -> HashAlg {
        self.bank
    }

    /// The selection these values are for.
    #[must_use]
    pub const fn mask(&self) -> PcrMask {
        self.mask
    }

    /// The PCRs still missing, as a mask.
    #[must_use]
    pub fn missing(&self) -> PcrMask {
        let have = self
            .mask
            .iter()
            .take(self.digests.len())
            .fold(0u32, |m, i| m | (1 << i));
        PcrMask(self.mask.0 & !have)
    }

    /// Whether every selected PCR has a value.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.digests.len() == self.mask.count()
    }

    /// Appends the value of `pcr`, which must be the lowest selected PCR not yet set.
    ///
    /// # Errors
    ///
    /// [`PcrValuesError`] if `pcr` is not next in the selection or the digest has the wrong size.
    pub fn push(&mut self, pcr: u8, digest: &[u8]) -> Result<(), PcrValuesError> {
        let next = self.mask.iter().nth(self.digests.len());
        if next != Some(pcr) {
            return Err(PcrValuesError::Unexpected { pcr });
        }
        if digest.len() != self.bank.digest_size() {
            return Err(PcrValuesError::WrongSize {
                pcr,
                size: digest.len(),
            });
        }
        let d = Digest::from_slice(digest).ok_or(PcrValuesError::WrongSize {
            pcr,
            size: digest.len(),
        })?;
        self.digests
            .push(d)
            .map_err(|_| PcrValuesError::Unexpected { pcr })
    }

    /// `(pcr, value)` pairs in ascending PCR order.
    pub fn iter(&self) -> impl Iterator<Item = (u8, &Digest)> {
        self.mask.iter().zip(self.digests.iter())
    }

    /// The value of `pcr`, if selected and read.
    #[must_use]
    pub fn get(&self, pcr: u8) -> Option<&Digest> {
        self.iter().find(|(i, _)| *i == pcr).map(|(_, d)| d)
    }

    /// Replaces the value of `pcr`, which must have been read already.
    ///
    /// # Errors
    ///
    /// [`PcrValuesError`] if `pcr` has no value yet or `digest` is not the bank's size.
    pub fn replace(&mut self, pcr: u8, digest: &Digest) -> Result<(), PcrValuesError> {
        let size = digest.as_bytes().len();
        if size != self.bank.digest_size() {
            return Err(PcrValuesError::WrongSize { pcr, size });
        }
        let at = self
            .mask
            .iter()
            .take(self.digests.len())
            .position(|i| i == pcr)
            .ok_or(PcrValuesError::Unexpected { pcr })?;
        let slot = self
            .digests
            .get_mut(at)
            .ok_or(PcrValuesError::Unexpected { pcr })?;
        *slot = *digest;
        Ok(())
    }

    /// The quote's pcrDigest: the bank hash over all values in ascending order.
    #[must_use]
    pub fn composite_digest(&self) -> Digest {
        let mut parts: heapless::Vec<&[u8], PCR_COUNT> = heapless::Vec::new();
        for d in &self.digests {
            // Cannot fail: both vectors have capacity PCR_COUNT.
            let _ = parts.push(d.as_bytes());
        }
        self.bank.hash_parts(&parts)
    }
}

/// The value PCR 16 holds after a reset and one extend with `H(data)`:
/// `H(0^n || H(data))`, as Keylime computes it for the payload key PEM.
#[must_use]
pub fn extended_from_zero(bank: HashAlg, data: &[u8]) -> Digest {
    extended_once(bank, bank.hash(data).as_bytes())
}

/// The value a PCR of `bank` holds after a reset and one extend with
/// `digest`: `H(0^n || digest)`.
#[must_use]
pub fn extended_once(bank: HashAlg, digest: &[u8]) -> Digest {
    let zero = [0u8; MAX_DIGEST_SIZE];
    bank.hash_parts(&[zero.get(..bank.digest_size()).unwrap_or(&[]), digest])
}
