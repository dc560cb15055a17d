//! Reading a JSON document into its type, with the path of the first thing
//! that was wrong (`json_path` finds it from serde_json's position).

use std::fmt;

use serde::Deserialize;

use super::json_path;

/// A document that is not what the protocol says: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// The JSON pointer of the value that was wrong (`""`: the document).
    pub(crate) path: String,
    /// What was wrong with it.
    pub(crate) message: String,
}

impl JsonError {
    /// An error at `path` (a JSON pointer) found after decoding.
    pub(crate) fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for JsonError {}

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
        let path = json_path::locate(body, e.line(), e.column());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        data: Vec<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        id: u8,
    }

    #[test]
    fn errors_name_the_json_path() {
        let e = decode::<Outer>(br#"{"data":[{"id":1},{"id":"x"}]}"#).unwrap_err();
        assert_eq!(e.path, "/data/1/id");
        assert!(e.message.starts_with("invalid type: string"), "{e}");
        let e = decode::<Outer>(br#"{"data":[{}]}"#).unwrap_err();
        assert_eq!(e.to_string(), "/data/0/id: missing");
        let e = decode::<Outer>(b"<html>").unwrap_err();
        assert!(e.message.starts_with("not JSON"), "{e}");
    }
}
