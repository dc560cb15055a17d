//! A tolerant reader for TPM2_GetCapability responses.
//!
//! Values keylet does not know (vendor properties, new algorithms or command
//! codes) are handed back raw and never fail the parse.

use super::cursor::{Cursor, ReadError};

/// TPM_CAP_ALGS.
pub const CAP_ALGS: u32 = 0;
/// TPM_CAP_HANDLES.
pub const CAP_HANDLES: u32 = 1;
/// TPM_CAP_COMMANDS.
pub const CAP_COMMANDS: u32 = 2;
/// TPM_CAP_PCRS.
pub const CAP_PCRS: u32 = 5;
/// TPM_CAP_TPM_PROPERTIES.
pub const CAP_TPM_PROPERTIES: u32 = 6;
/// TPM_CAP_ECC_CURVES.
pub const CAP_ECC_CURVES: u32 = 8;

/// TPM_PT_NV_BUFFER_MAX: the largest NV_Read/NV_Write chunk.
pub const PT_NV_BUFFER_MAX: u32 = 0x12C;
/// TPM_PT_MANUFACTURER.
pub const PT_MANUFACTURER: u32 = 0x105;

/// The first handle of the transient-object range.
pub const HANDLES_TRANSIENT: u32 = super::handle::TRANSIENT_FIRST;
/// The first handle of the loaded-session (HMAC) range.
pub const HANDLES_LOADED_SESSION: u32 = super::handle::LOADED_SESSION_FIRST;
/// The first handle of the policy/saved-session range.
pub const HANDLES_POLICY_SESSION: u32 = super::handle::POLICY_SESSION_FIRST;
/// The first handle of the persistent-object range.
pub const HANDLES_PERSISTENT: u32 = super::handle::PERSISTENT_FIRST;
/// The first handle of the NV-index range.
pub const HANDLES_NV_INDEX: u32 = super::handle::NV_INDEX_FIRST;

/// A GetCapability response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capability<'a> {
    /// moreData: the TPM has more items after the last one returned.
    pub more_data: bool,
    /// The capability that came back.
    pub capability: u32,
    /// The item count.
    pub count: u32,
    items: &'a [u8],
}

impl<'a> Capability<'a> {
    /// The size of one item of this capability, if it has fixed-size items.
    const fn item_size(capability: u32) -> Option<usize> {
        match capability {
            CAP_ALGS => Some(6),
            CAP_HANDLES | CAP_COMMANDS | 3 | 4 => Some(4),
            CAP_TPM_PROPERTIES | 7 => Some(8),
            CAP_ECC_CURVES => Some(2),
            _ => None,
        }
    }

    fn fixed(&self, capability: u32, size: usize) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        let items = if self.capability == capability {
            self.items
        } else {
            &[]
        };
        items.chunks_exact(size)
    }

    /// Handles (TPM_CAP_HANDLES); empty for any other capability.
    pub fn handles(&self) -> impl Iterator<Item = u32> + use<'a> {
        self.fixed(CAP_HANDLES, 4).map(be32)
    }

    /// `(property, value)` pairs (TPM_CAP_TPM_PROPERTIES), unknown ones included.
    pub fn properties(&self) -> impl Iterator<Item = (u32, u32)> + use<'a> {
        self.fixed(CAP_TPM_PROPERTIES, 8)
            .map(|c| (be32(c), be32(c.get(4..).unwrap_or(&[]))))
    }

    /// `(algorithm id, attributes)` pairs (TPM_CAP_ALGS).
    pub fn algorithms(&self) -> impl Iterator<Item = (u16, u32)> + use<'a> {
        self.fixed(CAP_ALGS, 6)
            .map(|c| (be16(c), be32(c.get(2..).unwrap_or(&[]))))
    }

    /// Command attributes, including the command index in the low 16 bits
    /// (TPM_CAP_COMMANDS).
    pub fn commands(&self) -> impl Iterator<Item = u32> + use<'a> {
        self.fixed(CAP_COMMANDS, 4).map(be32)
    }

    /// The value of property `pt`, if it came back.
    #[must_use]
    pub fn property(&self, pt: u32) -> Option<u32> {
        self.properties().find(|(p, _)| *p == pt).map(|(_, v)| v)
    }

    /// The TPM's manufacturer (TPM_PT_MANUFACTURER), if it came back.
    #[must_use]
    pub fn manufacturer(&self) -> Option<Manufacturer> {
        self.property(PT_MANUFACTURER).map(Manufacturer)
    }

    /// `(bank alg id, select bitmap)` per bank (TPM_CAP_PCRS).
    pub fn pcr_banks(&self) -> impl Iterator<Item = (u16, &'a [u8])> + use<'a> {
        let items = if self.capability == CAP_PCRS {
            self.items
        } else {
            &[]
        };
        let mut c = Cursor::new(items);
        (0..self.count).map_while(move |_| c.pcr_selection("pcrs").ok())
    }
}

/// TPM_PT_MANUFACTURER: the vendor's four-character ID, shown as its
/// printable characters ("IBM", "INTC", "MSFT"); padding is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Manufacturer(pub u32);

impl core::fmt::Display for Manufacturer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0
            .to_be_bytes()
            .iter()
            .filter(|b| b.is_ascii_graphic())
            .try_for_each(|b| core::fmt::Write::write_char(f, char::from(*b)))
    }
}

fn be32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(..4) {
        a.copy_from_slice(s);
    }
    u32::from_be_bytes(a)
}

fn be16(b: &[u8]) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = b.get(..2) {
        a.copy_from_slice(s);
    }
    u16::from_be_bytes(a)
}

/// Reads a TPM2_GetCapability response.
///
/// # Errors
///
/// [`ReadError`] only if the list runs past the end of the response; unknown
/// capabilities, properties, algorithms and command codes are not errors.
pub fn read(params: &[u8]) -> Result<Capability<'_>, ReadError> {
    let mut c = Cursor::new(params);
    let more_data = c.u8("moreData")? != 0;
    let capability = c.u32("capability")?;
    if Capability::item_size(capability).is_none() && capability != CAP_PCRS {
        // Unknown layout: report no items rather than fail.
        return Ok(Capability {
            more_data,
            capability,
            count: 0,
            items: &[],
        });
    }
    let count = c.u32("count")?;
    let items = match Capability::item_size(capability) {
        Some(size) => {
            let n = usize::try_from(count)
                .ok()
                .and_then(|n| n.checked_mul(size))
                .ok_or(ReadError::invalid("capability count too large", c.offset()))?;
            c.take(n, "capability items")?
        }
        None => {
            let start = c.rest();
            let mut walk = c.clone();
            for _ in 0..count {
                walk.pcr_selection("pcrs")?;
            }
            start
                .get(..walk.offset().saturating_sub(c.offset()))
                .unwrap_or(&[])
        }
    };
    Ok(Capability {
        more_data,
        capability,
        count,
        items,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn unknown_properties_and_capabilities_are_tolerated() {
        let params = [
            0, 0, 0, 0, 6, 0, 0, 0, 2, // TPM_PROPERTIES, 2 items
            0, 0, 0x01, 0x2F, 0xde, 0xad, 0xbe, 0xef, // unknown PT 0x12F
            0, 0, 0x01, 0x2C, 0, 0, 0x04, 0x00, // NV_BUFFER_MAX 1024
        ];
        let cap = read(&params).unwrap();
        assert_eq!(cap.property(PT_NV_BUFFER_MAX), Some(1024));
        assert_eq!(cap.properties().count(), 2);
        let vendor = [1, 0, 0, 1, 0, 0xff, 0xff];
        let cap = read(&vendor).unwrap();
        assert!(cap.more_data);
        assert_eq!(cap.handles().count(), 0);
    }

    #[test]
    fn manufacturer_is_its_printable_characters() {
        let params = [
            0, 0, 0, 0, 6, 0, 0, 0, 1, // TPM_PROPERTIES, 1 item
            0, 0, 0x01, 0x05, b'I', b'B', b'M', 0, // TPM_PT_MANUFACTURER "IBM\0"
        ];
        let cap = read(&params).unwrap();
        let m = cap.manufacturer().unwrap();
        assert_eq!(m, Manufacturer(0x4942_4D00));
        let mut text = heapless::String::<8>::new();
        core::fmt::write(&mut text, format_args!("{m}")).unwrap();
        assert_eq!(text, "IBM");
        let none = [0, 0, 0, 0, 6, 0, 0, 0, 0];
        assert_eq!(read(&none).unwrap().manufacturer(), None);
    }

    #[test]
    fn handles_and_truncation() {
        let params = [0, 0, 0, 0, 1, 0, 0, 0, 2, 0x80, 0, 0, 0, 0x80, 0, 0, 1];
        let cap = read(&params).unwrap();
        let mut h = cap.handles();
        assert_eq!(h.next(), Some(0x8000_0000));
        assert_eq!(h.next(), Some(0x8000_0001));
        assert_eq!(h.next(), None);
        assert!(read(params.get(..12).unwrap()).is_err());
    }
}
