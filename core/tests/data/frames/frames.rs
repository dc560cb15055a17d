//! Reads the captured frame files in this directory (shared by the core's
//! TPM tests through `#[path]`).
#![allow(dead_code)]

/// One command and its response.
#[derive(Debug, Clone)]
pub struct Frame {
    pub cc: u32,
    pub command: Vec<u8>,
    pub response: Vec<u8>,
}

/// A capture file: `# key value` headers and frames.
#[derive(Debug, Clone)]
pub struct Capture {
    pub headers: Vec<(String, String)>,
    pub frames: Vec<Frame>,
}

impl Capture {
    pub fn header(&self, key: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no header {key}"))
    }

    pub fn with_cc(&self, cc: u32) -> impl Iterator<Item = &Frame> {
        self.frames.iter().filter(move |f| f.cc == cc)
    }
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

pub fn load(name: &str) -> Capture {
    let path = format!("{}/tests/data/frames/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut headers = Vec::new();
    let mut frames: Vec<Frame> = Vec::new();
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("# ") {
            let (k, v) = h.split_once(' ').unwrap_or((h, ""));
            headers.push((k.to_owned(), v.to_owned()));
            continue;
        }
        let mut parts = line.split(' ');
        let cc = u32::from_str_radix(parts.next().unwrap(), 16).unwrap();
        let kind = parts.next().unwrap();
        let bytes = unhex(parts.next().unwrap());
        match kind {
            "Command" => frames.push(Frame {
                cc,
                command: bytes,
                response: Vec::new(),
            }),
            "Response" => frames.last_mut().unwrap().response = bytes,
            other => panic!("bad line kind {other}"),
        }
    }
    Capture { headers, frames }
}
