//! Reading a JSON document into its type ([`decode`]), with the JSON pointer
//! of the first thing that was wrong, found from serde_json's error
//! position (line and column).
//!
//! serde_json reports the position of the last byte it consumed: the end of
//! the value it could not take (an object or array that lacks a field or has
//! the wrong length is consumed to its closing bracket first), or the byte
//! before a value it refused at its first byte. This scanner walks the
//! document's structure up to there (brackets, keys, commas; values are
//! skipped, never decoded) and names that value. It replaces tracking the
//! path through every `Deserialize` (serde_path_to_error), which cost 36 KiB
//! of the static binary's 2.5 MiB budget (BENCHMARKS.md).

use serde::Deserialize;

/// A document that is not what the protocol says: the JSON pointer of the
/// value that was wrong (`""`: the document), and what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}{}{message}", if .path.is_empty() { "" } else { ": " })]
pub struct JsonError {
    pub(crate) path: String,
    pub(crate) message: String,
}

impl JsonError {
    pub(crate) fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// Reads `body` as a `T`.
///
/// # Errors
///
/// [`JsonError`] with the path of the first value that does not fit, or
/// "not JSON" when the body is not JSON at all.
pub fn decode<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<T, JsonError> {
    serde_json::from_slice(body).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            return JsonError::at("", format!("not JSON: {e}"));
        }
        let path = locate(body, e.line(), e.column());
        // Without serde_json's " at line L column C": the path says where.
        let message = e.to_string();
        let at = message.rfind(" at line ").unwrap_or(message.len());
        let message = message.get(..at).unwrap_or(&message);
        // A missing field is named by its own path.
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|m| m.strip_suffix('`'))
        {
            let field = field.replace('~', "~0").replace('/', "~1");
            return JsonError::at(format!("{path}/{field}"), "missing");
        }
        JsonError::at(path, message)
    })
}

/// One open object or array, with its current member or element.
enum Frame {
    /// The key of the member being read (`None` before its key).
    Object(Option<String>),
    /// The number of elements started; the last one is being read.
    Array(usize),
}

/// The JSON pointer of the value at serde_json's error position (`line`,
/// `column`, 1-based) in `body`: the one that ends there, or else the one
/// that starts right after it, or else the object or array open there.
fn locate(body: &[u8], line: usize, column: usize) -> String {
    let lines = body
        .split_inclusive(|&b| b == b'\n')
        .take(line.saturating_sub(1));
    let line_start: usize = lines.filter(|l| l.ends_with(b"\n")).map(<[u8]>::len).sum();
    let bytes = body
        .get(..line_start.saturating_add(column))
        .unwrap_or(body);
    let mut frames: Vec<Frame> = Vec::new();
    // The pointer of the value that ended last, while nothing followed it.
    let mut ended: Option<String> = None;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        i += 1;
        if b.is_ascii_whitespace() {
            continue;
        }
        ended = None;
        match b {
            b'{' | b'[' => {
                start_value(&mut frames);
                frames.push(if b == b'{' {
                    Frame::Object(None)
                } else {
                    Frame::Array(0)
                });
            }
            b'}' | b']' => {
                frames.pop();
                ended = Some(pointer(&frames));
            }
            b',' => {
                if let Some(Frame::Object(key)) = frames.last_mut() {
                    *key = None;
                }
            }
            b':' => {}
            b'"' => {
                let close = string_end(bytes, i);
                let text = bytes.get(i..close).unwrap_or_default();
                if let Some(Frame::Object(key @ None)) = frames.last_mut() {
                    *key = Some(String::from_utf8_lossy(text).into_owned());
                } else {
                    start_value(&mut frames);
                }
                ended = Some(pointer(&frames));
                i = close + 1;
            }
            _ => {
                start_value(&mut frames);
                while bytes
                    .get(i)
                    .is_some_and(|c| !c.is_ascii_whitespace() && !b",:]}".contains(c))
                {
                    i += 1;
                }
                ended = Some(pointer(&frames));
            }
        }
    }
    let container = || pointer(frames.split_last().map_or(&[], |(_, open)| open));
    ended.unwrap_or_else(|| match frames.last() {
        // The next element of an array, or the value after a member's key.
        Some(Frame::Array(n)) => format!("{}/{n}", container()),
        Some(Frame::Object(Some(_))) => pointer(&frames),
        _ => container(),
    })
}

/// A value starts: in an array, it is the next element.
fn start_value(frames: &mut [Frame]) {
    if let Some(Frame::Array(n)) = frames.last_mut() {
        *n += 1;
    }
}

/// The index of the quote that closes the string whose text starts at
/// `from` (or the end of `bytes` when it is cut short).
fn string_end(bytes: &[u8], from: usize) -> usize {
    let mut i = from;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The JSON pointer of the value read in `frames`.
fn pointer(frames: &[Frame]) -> String {
    let mut out = String::new();
    for frame in frames {
        out.push('/');
        match frame {
            Frame::Object(Some(key)) => out.push_str(&key.replace('~', "~0").replace('/', "~1")),
            Frame::Object(None) => out.push('?'),
            Frame::Array(n) => out.push_str(&n.saturating_sub(1).to_string()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The position serde_json reports for `body` decoded as `T`.
    fn at<T: serde::de::DeserializeOwned>(body: &str) -> String {
        let e = serde_json::from_str::<T>(body).err().unwrap();
        locate(body.as_bytes(), e.line(), e.column())
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Doc {
        a: u8,
        list: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Item {
        id: u8,
        name: String,
    }

    #[test]
    fn errors_name_the_json_path() {
        let e = decode::<Doc>(br#"{"a":1,"list":[{"id":1,"name":"n"},{"id":"x"}]}"#).unwrap_err();
        assert_eq!(e.path, "/list/1/id");
        assert!(e.message.starts_with("invalid type: string"), "{e}");
        let e = decode::<Doc>(br#"{"a":1,"list":[{"name":"n"}]}"#).unwrap_err();
        assert_eq!(e.to_string(), "/list/0/id: missing");
        let e = decode::<Doc>(b"<html>").unwrap_err();
        assert!(e.message.starts_with("not JSON"), "{e}");
    }

    #[test]
    fn a_wrong_value_or_an_object_that_lacks_a_field_is_named() {
        for (body, path) in [
            (r#"{"a":"x","list":[]}"#, "/a"),
            (
                r#"{"a":1,"list":[{"id":1,"name":"n"},{"id":300,"name":"n"}]}"#,
                "/list/1/id",
            ),
            (
                r#"{"a":1,"list":[{"id":1,"name":{"x":1}}]}"#,
                "/list/0/name",
            ),
            ("{\n  \"a\": 1,\n  \"list\": {\"id\": 1}\n}", "/list"),
            (r#"{"a":1,"list":[1]}"#, "/list/0"),
            // Lacking a field: the object is named.
            (r#"{"a":1}"#, ""),
            (r#"{"a":1,"list":[{"id":1}]}"#, "/list/0"),
            (r#"{"a":1,"list":[{}]}"#, "/list/0"),
        ] {
            assert_eq!(at::<Doc>(body), path, "{body}");
        }
        assert_eq!(at::<(u8, u8)>(r#"[1]"#), "");
        assert_eq!(at::<Vec<(u8, u8)>>(r#"[[1,2],[1]]"#), "/1");
    }

    #[test]
    fn odd_keys_and_cut_documents_do_not_confuse_it() {
        let l = at::<std::collections::BTreeMap<String, u8>>(r#"{"a/b~":"x"}"#);
        assert_eq!(l, "/a~1b~0");
        let l = at::<Vec<String>>(r#"["a\"]",7]"#);
        assert_eq!(l, "/1");
        for cut in [&b"{\"a\":[1,"[..], b"{\"a\":\"x\\", b"]]]}}", b""] {
            let _ = locate(cut, 1, 100);
            let _ = locate(cut, 9, 0);
        }
    }
}
