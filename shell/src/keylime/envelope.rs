//! Keylime's v2 envelope, `{"code":…,"status":…,"results":…}`: written by the
//! agent's API, read from the registrar and the verifier.

use serde::{Deserialize, Serialize};

/// The `status` text of every successful answer.
pub(crate) const SUCCESS: &str = "Success";

/// An envelope keylet writes: `code` repeats the HTTP status, `status` is
/// `Success` or the error message, `results` the answer (`{}` for none).
#[derive(Debug, Serialize)]
pub(crate) struct Envelope<'a, T> {
    pub(crate) code: u16,
    pub(crate) status: &'a str,
    pub(crate) results: T,
}

impl<T> Envelope<'static, T> {
    pub(crate) const fn success(results: T) -> Self {
        Self {
            code: 200,
            status: SUCCESS,
            results,
        }
    }
}

/// An envelope keylet reads; every part may be missing.
#[derive(Debug, Deserialize)]
pub(crate) struct EnvelopeIn<T> {
    pub(crate) status: Option<String>,
    pub(crate) results: Option<T>,
}

/// `{}` as `results`.
#[derive(Debug, Serialize)]
pub(crate) struct Empty {}
