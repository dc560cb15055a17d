//! Query-string parsing and validation for the quote endpoints.

use keylet_core::keylime::hex;
use keylet_core::pcr::PcrMask;

/// The longest nonce accepted (keylime's limit; the tenant and verifier send 20).
pub const MAX_NONCE_LEN: usize = 64;

/// How much of a rejected value is echoed back in an error message.
const ECHO_LIMIT: usize = 80;

/// A rejected query parameter: the 400's `status`, which names the parameter
/// and says what was wrong with it.
pub type QueryError = String;

/// A quote nonce: 1 to 64 ASCII letters and digits. The TPM gets its bytes as
/// the quote's qualifying data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nonce(String);

impl Nonce {
    /// # Errors
    ///
    /// The nonce is empty, longer than [`MAX_NONCE_LEN`] or not alphanumeric.
    pub fn parse(value: &str) -> Result<Self, QueryError> {
        if value.is_empty() {
            return Err("nonce is empty; it must have 1 to 64 alphanumeric characters".into());
        }
        if !value.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(format!(
                "nonce should be strictly alphanumeric (A-Z, a-z, 0-9): {}",
                echo(value)
            ));
        }
        if value.len() > MAX_NONCE_LEN {
            let len = value.len();
            return Err(format!(
                "Nonce is too long (max size {MAX_NONCE_LEN}): {len}"
            ));
        }
        Ok(Self(value.to_owned()))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The parameters of `GET /quotes/integrity`, and of `/quotes/identity` (a
/// nonce only) as the quote it asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrityQuery {
    pub nonce: Nonce,
    /// The PCRs the verifier asked for (PCR 16 is added when quoting).
    pub mask: PcrMask,
    /// `partial=0`: the response carries the payload public key.
    pub include_pubkey: bool,
    /// The first IMA log line wanted (`ima_ml_entry`; missing or unparsable is 0).
    pub ima_ml_entry: u64,
}

fn nonce(query: &str) -> Result<Nonce, QueryError> {
    let nonce = find(query, "nonce")
        .ok_or("uri must contain key 'nonce' with 1 to 64 alphanumeric characters")?;
    Nonce::parse(&nonce)
}

impl IntegrityQuery {
    /// Parses the raw query string (without `?`) of `/quotes/integrity`.
    ///
    /// # Errors
    ///
    /// The first bad parameter, checked in the order nonce, mask, partial.
    pub fn parse(query: &str) -> Result<Self, QueryError> {
        let nonce = nonce(query)?;
        let mask = find(query, "mask")
            .ok_or("uri must contain key 'mask' (a hex PCR bitmask such as 0x400)")?;
        let mask = parse_mask(&mask)?;
        let include_pubkey = match find(query, "partial").as_deref() {
            Some("0") => true,
            Some("1") => false,
            _ => return Err("uri must contain key 'partial' and value '0' or '1'".into()),
        };
        let ima_ml_entry = find(query, "ima_ml_entry")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Ok(Self {
            nonce,
            mask,
            include_pubkey,
            ima_ml_entry,
        })
    }

    /// Parses the raw query string of `/quotes/identity`: PCR 16 alone, with
    /// the payload key.
    ///
    /// # Errors
    ///
    /// The bad or missing `nonce`.
    pub fn identity(query: &str) -> Result<Self, QueryError> {
        Ok(Self {
            nonce: nonce(query)?,
            mask: PcrMask::EMPTY,
            include_pubkey: true,
            ima_ml_entry: 0,
        })
    }
}

/// Parses a PCR mask written as hex, with or without `0x`, any case.
///
/// # Errors
///
/// The mask is not hexadecimal, or selects a PCR above 23.
pub fn parse_mask(value: &str) -> Result<PcrMask, QueryError> {
    let out_of_range = || {
        let value = echo(value);
        format!("mask selects a PCR above 23; only PCRs 0 to 23 exist: {value}")
    };
    let digits = value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
        .unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "mask should be a hex encoded 32-bit integer: {}",
            echo(value)
        ));
    }
    let significant = digits.trim_start_matches('0');
    if significant.len() > 8 {
        return Err(out_of_range());
    }
    // At most 8 hex digits always fit; none (a mask of zeros) is 0.
    let bits = u32::from_str_radix(significant, 16).unwrap_or(0);
    PcrMask::new(bits).map_err(|_| out_of_range())
}

/// The decoded value of the first `key=value` pair named `key`, decoding
/// `application/x-www-form-urlencoded` (`+` is a space, `%XX` a byte; a
/// malformed `%` escape stays literal).
#[must_use]
pub fn find(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(k, _)| decode(k) == key)
        .map(|(_, v)| decode(v))
}

fn decode(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s.as_bytes();
    while let [b, tail @ ..] = rest {
        let mut byte = [0u8; 1];
        rest = match (b, tail) {
            (b'%', [hi, lo, after @ ..]) if hex::decode(&[*hi, *lo], &mut byte).is_ok() => {
                out.extend_from_slice(&byte);
                after
            }
            _ => {
                out.push(if *b == b'+' { b' ' } else { *b });
                tail
            }
        };
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A rejected value as it is quoted back, shortened.
fn echo(value: &str) -> String {
    match value.char_indices().nth(ECHO_LIMIT) {
        Some((cut, _)) => format!("{}...", value.get(..cut).unwrap_or_default()),
        None => value.to_owned(),
    }
}
