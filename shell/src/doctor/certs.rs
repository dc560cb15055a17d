//! Checks: every configured certificate's dates, and whether each CA bundle
//! holds the issuer of every certificate in it (the full chain).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustls_pki_types::CertificateDer;
use x509_cert::Certificate;
use x509_cert::der::Decode as _;
use x509_cert::ext::pkix::BasicConstraints;

use super::report::{Outcome, Status, fail, warn};
use crate::keys::read_certs;

/// Less time left than this: WARN; than that (or expired): FAIL.
const WARN_LEFT: Duration = Duration::from_secs(7 * 86_400);
const FAIL_LEFT: Duration = Duration::from_secs(3 * 86_400);

/// One certificate of `path`, or a message naming the file.
fn parse(der: &CertificateDer<'_>, path: &Path) -> Result<Certificate, String> {
    let shown = path.display();
    Certificate::from_der(der)
        .map_err(|e| format!("{shown} holds a certificate that does not parse: {e}"))
}

fn days(d: Duration) -> String {
    let hours = d.as_secs() / 3600;
    if hours < 48 {
        format!("{hours} h")
    } else {
        format!("{} days", hours / 24)
    }
}

/// The dates of one certificate against `now`: OK, WARN under 7 days left,
/// FAIL under 3 days, expired, or not yet valid.
fn judge(cert: &Certificate, now: SystemTime) -> (Status, String) {
    let validity = cert.tbs_certificate().validity();
    let subject = cert.tbs_certificate().subject().to_string();
    if now < validity.not_before.to_system_time() {
        let found = format!("{subject:?} is not valid before {}", validity.not_before);
        return (Status::Fail, found);
    }
    let Ok(left) = validity.not_after.to_system_time().duration_since(now) else {
        let found = format!("{subject:?} expired on {}", validity.not_after);
        return (Status::Fail, found);
    };
    if left >= WARN_LEFT {
        return (Status::Ok, format!("{subject:?} valid for {}", days(left)));
    }
    let status = if left < FAIL_LEFT {
        Status::Fail
    } else {
        Status::Warn
    };
    let when = format!("{} ({})", days(left), validity.not_after);
    (status, format!("{subject:?} expires in {when}"))
}

/// The certificate file `path` used as `option`: the worst dates among its
/// certificates (the first of them when several are as bad).
pub(crate) fn expiry(option: &str, path: &Path, now: SystemTime) -> Outcome {
    let shown = path.display();
    let fix = format!("put the PEM certificate(s) at {shown} or set {option}");
    let certs = read_certs(path, None).map_err(|e| fail(format!("{option}: {e}"), fix))?;
    let judged = certs.iter().map(|der| match parse(der, path) {
        Ok(cert) => judge(&cert, now),
        Err(e) => (Status::Fail, e),
    });
    let (status, found) = judged.rev().max_by_key(|j| j.0).unwrap_or_default();
    let count = if certs.len() == 1 {
        String::new()
    } else {
        format!(" ({} certificates, worst shown)", certs.len())
    };
    let detail = format!("{option} {shown}: {found}{count}");
    if status == Status::Ok {
        return Ok(detail);
    }
    let renew = format!(
        "renew the certificate in {shown} (keylet warns 7 days and fails 3 days before expiry)"
    );
    Err((status, detail, renew))
}

/// Whether the CA bundle files of `option` hold every issuer their
/// certificates name, up to a self-issued root, and only CA certificates.
pub(crate) fn bundle(option: &str, paths: &[PathBuf]) -> Outcome {
    let mut all: Vec<(&PathBuf, Certificate)> = Vec::new();
    let fix = format!("put the CA certificate(s) in PEM at the path {option} names");
    for path in paths {
        let parsed: Result<Vec<Certificate>, String> =
            read_certs(path, None).and_then(|certs| certs.iter().map(|d| parse(d, path)).collect());
        let certs = parsed.map_err(|e| fail(format!("{option}: {e}"), &fix))?;
        all.extend(certs.into_iter().map(|c| (path, c)));
    }
    if all.is_empty() {
        let fix = format!("set {option} to the CA bundle (PEM)");
        return Err(fail(format!("{option} names no file"), fix));
    }
    for (path, cert) in &all {
        let tbs = cert.tbs_certificate();
        let file = path.display();
        let (subject, issuer) = (tbs.subject().to_string(), tbs.issuer().to_string());
        let (subject, issuer) = (format!("{subject:?}"), format!("{issuer:?}"));
        if !matches!(tbs.get_extension::<BasicConstraints>(), Ok(Some((_, bc))) if bc.ca) {
            return Err(warn(
                format!("{option}: {file} holds {subject}, which is not a CA certificate"),
                format!(
                    "{option} must hold the CA certificates that sign the peers' certificates, \
                     not a peer certificate"
                ),
            ));
        }
        let present = all
            .iter()
            .any(|(_, o)| o.tbs_certificate().subject() == tbs.issuer());
        if tbs.issuer() != tbs.subject() && !present {
            return Err(warn(
                format!("{option}: the bundle lacks {issuer}, the issuer of {subject} in {file}"),
                format!(
                    "append the issuing CA certificates up to the root to {file}, so that every \
                     Keylime component (OpenSSL needs the root) can build the chain"
                ),
            ));
        }
    }
    let files: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let (files, n) = (files.join(", "), all.len());
    let found = format!("{option} {files}: {n} CA certificate(s), each issuer present");
    Ok(found)
}
