//! A document with string fields too large to hold in memory: serde writes
//! the document with each such field empty, and the cuts where their
//! contents go are recorded as it writes, so the caller streams each field
//! from its file between the pieces. The document's shape stays serde's.

use std::cell::RefCell;
use std::io;

use serde::{Serialize, Serializer};

/// Serializes a document and records where its [`Slot`]s are.
#[derive(Debug, Default)]
pub(crate) struct Splicer {
    out: RefCell<Vec<u8>>,
    cuts: RefCell<Vec<usize>>,
}

/// A string field whose contents come later: written as `""`, with the
/// position between the quotes recorded.
#[derive(Debug)]
pub(crate) struct Slot<'a>(&'a Splicer);

impl Serialize for Slot<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // serde_json has written everything before this value to `out`.
        let at = self.0.out.borrow().len().saturating_add(1);
        self.0.cuts.borrow_mut().push(at);
        serializer.serialize_str("")
    }
}

/// serde_json writes into the splicer's buffer.
impl io::Write for &Splicer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Splicer {
    /// A field to stream, in the order the document serializes its fields.
    pub(crate) const fn slot(&self) -> Slot<'_> {
        Slot(self)
    }

    /// Writes `doc` and cuts it where its slots are: one piece more than
    /// slots serialized, each slot's contents going between two pieces.
    ///
    /// Errors: serde_json's, or `InvalidData` if a slot was written by another
    /// serializer than this one (its cut would not be between quotes).
    pub(crate) fn write<T: Serialize>(&self, doc: &T) -> io::Result<Vec<Vec<u8>>> {
        serde_json::to_writer(self, doc)?;
        let out = self.out.take();
        let cuts = self.cuts.take();
        let mut pieces = Vec::with_capacity(cuts.len().saturating_add(1));
        let mut from = 0;
        for cut in cuts {
            let quotes = out.get(cut.wrapping_sub(1)..cut.saturating_add(1));
            if quotes != Some(b"\"\"".as_slice()) || cut < from {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "a streamed field was not written as an empty JSON string",
                ));
            }
            pieces.push(out.get(from..cut).unwrap_or_default().to_vec());
            from = cut;
        }
        pieces.push(out.get(from..).unwrap_or_default().to_vec());
        Ok(pieces)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Default)]
    struct Doc<'a> {
        a: &'a str,
        big: Option<Slot<'a>>,
        n: u64,
        other: Option<Slot<'a>>,
    }

    #[test]
    fn pieces_join_with_the_streamed_contents_into_the_document() {
        let s = Splicer::default();
        let doc = Doc {
            a: "x\"}",
            big: Some(s.slot()),
            n: 7,
            other: Some(s.slot()),
        };
        let pieces = s.write(&doc).unwrap();
        assert_eq!(pieces.len(), 3);
        let joined = [
            pieces[0].as_slice(),
            b"line \\\"1\\\"",
            &pieces[1],
            b"AAEC",
            &pieces[2],
        ]
        .concat();
        let v: serde_json::Value = serde_json::from_slice(&joined).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a":"x\"}","big":"line \"1\"","n":7,"other":"AAEC"})
        );

        let pieces = Splicer::default().write(&Doc::default()).unwrap();
        assert_eq!(
            pieces,
            vec![br#"{"a":"","big":null,"n":0,"other":null}"#.to_vec()]
        );
    }

    #[test]
    fn a_slot_written_elsewhere_is_refused() {
        let s = Splicer::default();
        let slot = s.slot();
        let elsewhere = serde_json::to_vec(&vec![&slot, &slot]).unwrap();
        assert_eq!(elsewhere, br#"["",""]"#);
        assert!(s.write(&Vec::<u8>::new()).is_err());
    }
}
