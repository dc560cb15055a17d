//! Keylime's v2 envelope, `{"code":…,"status":…,"results":…}`: written by the
//! agent's API, read from the registrar and the verifier.

use serde::{Deserialize, Serialize};

/// The `status` text of every successful answer.
pub(crate) const SUCCESS: &str = "Success";

/// An envelope keylet writes.
#[derive(Debug, Serialize)]
pub(crate) struct Envelope<'a, T> {
    /// The HTTP status code, repeated.
    pub(crate) code: u16,
    /// `Success`, or the error message.
    pub(crate) status: &'a str,
    /// The answer (`{}` for none).
    pub(crate) results: T,
}

impl<T> Envelope<'static, T> {
    /// `{"code":200,"status":"Success","results":…}`.
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
    /// The message (`Success` or why not).
    pub(crate) status: Option<String>,
    /// The answer.
    pub(crate) results: Option<T>,
}

/// `{}` as `results`.
#[derive(Debug, Serialize)]
pub(crate) struct Empty {}
