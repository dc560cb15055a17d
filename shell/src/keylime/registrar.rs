//! The registrar's documents (keylime-protocol §3): registration, the
//! credential blob, activation, `/version`.

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use super::{EnvelopeIn, decode};
use crate::registrar::RegistrarError;
use crate::server::ApiVersion;

/// The body of `POST /v{api}/agents/{id}`: the AK's and the EK's
/// TPM2B_PUBLIC (base64), the mTLS server certificate PEM (or `"disabled"`),
/// the contact address and port (a JSON integer).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Registration<'a> {
    pub(crate) aik_tpm: &'a str,
    pub(crate) ek_tpm: &'a str,
    /// The EK certificate PEM; omitted when there is none (an empty value
    /// after a stored certificate would be an identity change, 403).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ekcert: Option<&'a str>,
    pub(crate) mtls_cert: &'a str,
    pub(crate) ip: &'a str,
    pub(crate) port: u16,
    /// The IAK, its certificate, the IDevID and its certificate, and the AK
    /// certified by the IAK; omitted without `enable_iak_idevid`.
    #[serde(flatten)]
    pub(crate) device_id: Option<DeviceIdFields<'a>>,
}

/// The TCG device identity fields of a registration, all base64: the IAK's
/// and the IDevID's TPM2B_PUBLIC and certificate DER, and the TPMS_ATTEST of
/// TPM2_Certify of the AK by the IAK with its TPMT_SIGNATURE.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DeviceIdFields<'a> {
    pub(crate) iak_tpm: &'a str,
    pub(crate) iak_cert: &'a str,
    pub(crate) idevid_tpm: &'a str,
    pub(crate) idevid_cert: &'a str,
    pub(crate) iak_attest: &'a str,
    pub(crate) iak_sign: &'a str,
}

/// The body of `PUT /v{api}/agents/{id}`: HMAC-SHA384 of the agent id with
/// the decrypted credential, hex.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Activation<'a> {
    pub(crate) auth_tag: &'a str,
}

#[derive(Debug, Deserialize)]
struct VersionResults {
    current_version: Option<String>,
    #[serde(default)]
    supported_versions: Vec<String>,
}

/// What the registrar's `/version` says: `current_version` and
/// `supported_versions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versions {
    pub(crate) current: Option<(u8, u8)>,
    pub(crate) supported: Vec<(u8, u8)>,
}

/// Parses `/version`.
///
/// # Errors
///
/// [`RegistrarError::BadResponse`] if it is not the expected JSON.
pub fn parse_version(body: &[u8]) -> Result<Versions, RegistrarError> {
    let r: VersionResults = results(body, "GET /version")?;
    // read as the agent API reads a version (`2.6`: no sign, no leading zero)
    let parse_one = |v: &String| ApiVersion::parse(v).map(|v| (v.major, v.minor));
    Ok(Versions {
        current: r.current_version.as_ref().and_then(parse_one),
        supported: r.supported_versions.iter().filter_map(parse_one).collect(),
    })
}

/// The registrar's current version if we support it, else the newest common one (2.x only).
#[must_use]
pub fn pick_version(ours: &[(u8, u8)], theirs: &Versions) -> Option<(u8, u8)> {
    if let Some(cur) = theirs.current
        && ours.contains(&cur)
    {
        return Some(cur);
    }
    ours.iter()
        .filter(|v| v.0 == 2 && theirs.supported.contains(v))
        .max()
        .copied()
}

fn message(body: &[u8]) -> String {
    decode::<EnvelopeIn<IgnoredAny>>(body)
        .ok()
        .and_then(|e| e.status)
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect())
}

/// Maps a non-200 answer to an error.
///
/// # Errors
///
/// [`RegistrarError::IdentityConflict`] for 403, [`RegistrarError::Status`] otherwise.
pub fn check_status(
    status: u16,
    body: &[u8],
    action: &'static str,
    id: &str,
) -> Result<(), RegistrarError> {
    match status {
        200 => Ok(()),
        403 => Err(RegistrarError::IdentityConflict {
            id: id.to_string(),
            message: message(body),
        }),
        _ => Err(RegistrarError::Status {
            action,
            status,
            message: message(body),
        }),
    }
}

#[derive(Debug, Deserialize)]
struct BlobResults {
    blob: String,
}

/// The credential blob (base64) from a registration answer.
///
/// # Errors
///
/// [`RegistrarError::BadResponse`] if absent.
pub fn parse_blob(body: &[u8]) -> Result<String, RegistrarError> {
    results(body, "registration answer").map(|r: BlobResults| r.blob)
}

/// The `results` of the registrar's answer to `what`.
fn results<'de, T: Deserialize<'de>>(body: &'de [u8], what: &str) -> Result<T, RegistrarError> {
    let bad = RegistrarError::BadResponse;
    decode::<EnvelopeIn<T>>(body)
        .map_err(|e| bad(format!("{what}: {e}")))?
        .results
        .ok_or_else(|| bad(format!("{what} has no results")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_registrars_current_version_or_the_newest_common() {
        // Verbatim from a 7.14.3 registrar.
        let body = br#"{"code":200,"status":"Success","results":{"current_version":"2.6","supported_versions":["1.0","2.0","2.1","2.2","2.3","2.4","2.5","2.6","3.0"]}}"#;
        let v = parse_version(body).unwrap();
        let ours = [(2, 1), (2, 2), (2, 3), (2, 4), (2, 5), (2, 6)];
        assert_eq!(pick_version(&ours, &v), Some((2, 6)));
        assert_eq!(pick_version(&[(2, 4), (2, 5)], &v), Some((2, 5)));
        let old = Versions {
            current: Some((3, 0)),
            supported: vec![(2, 0), (2, 1), (3, 0)],
        };
        assert_eq!(pick_version(&ours, &old), Some((2, 1)));
        assert_eq!(pick_version(&[(2, 6)], &old), None);
    }

    #[test]
    fn registration_json_omits_a_missing_ekcert_and_keeps_port_an_integer() {
        let r = Registration {
            aik_tpm: "AA",
            ek_tpm: "BB",
            ekcert: None,
            mtls_cert: "disabled",
            ip: "127.0.0.1",
            port: 9002,
            device_id: None,
        };
        // No ekcert, no device identity fields; the port a JSON integer.
        let base =
            r#"{"aik_tpm":"AA","ek_tpm":"BB","mtls_cert":"disabled","ip":"127.0.0.1","port":9002"#;
        assert_eq!(serde_json::to_string(&r).unwrap(), format!("{base}}}"));
        let with = Registration {
            device_id: Some(DeviceIdFields {
                iak_tpm: "I",
                iak_cert: "IC",
                idevid_tpm: "D",
                idevid_cert: "DC",
                iak_attest: "A",
                iak_sign: "S",
            }),
            ..r
        };
        assert_eq!(
            serde_json::to_string(&with).unwrap(),
            format!(
                r#"{base},"iak_tpm":"I","iak_cert":"IC","idevid_tpm":"D","idevid_cert":"DC","iak_attest":"A","iak_sign":"S"}}"#
            )
        );
    }

    #[test]
    fn a_403_is_an_identity_conflict_with_the_fix() {
        let body = br#"{"code":403,"status":"Agent re-registration with different TPM identity is forbidden","results":{}}"#;
        let err = check_status(403, body, "register", "abc").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("regdelete -u abc"), "{text}");
        assert!(text.contains("different TPM identity"), "{text}");
        assert!(!err.is_transient());
        assert_eq!(
            parse_blob(br#"{"results":{"blob":"utzA3g=="}}"#).unwrap(),
            "utzA3g=="
        );
        let e = parse_blob(br#"{"results":{"blob":7}}"#).unwrap_err();
        assert!(e.to_string().contains("/results/blob"), "{e}");
    }
}
