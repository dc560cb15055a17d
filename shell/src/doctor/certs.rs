//! Checks: every configured certificate's dates, and whether each CA bundle
//! holds the issuer of every certificate in it (the full chain).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustls_pki_types::CertificateDer;
use x509_cert::Certificate;
use x509_cert::der::Decode as _;
use x509_cert::ext::pkix::BasicConstraints;

use super::report::Check;

/// Less than this left: WARN.
pub(crate) const WARN_LEFT: Duration = Duration::from_secs(7 * 86_400);
/// Less than this left (or expired): FAIL.
pub(crate) const FAIL_LEFT: Duration = Duration::from_secs(3 * 86_400);

pub(crate) use crate::keys::read_certs;

/// Parses one certificate.
///
/// # Errors
///
/// A message naming the file when it is not an X.509 certificate.
pub(crate) fn parse(der: &CertificateDer<'_>, path: &Path) -> Result<Certificate, String> {
    Certificate::from_der(der.as_ref()).map_err(|e| {
        format!(
            "{} holds a certificate that does not parse: {e}",
            path.display()
        )
    })
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
fn judge(cert: &Certificate, now: SystemTime) -> (super::report::Status, String) {
    use super::report::Status;
    let validity = cert.tbs_certificate().validity();
    let subject = cert.tbs_certificate().subject().to_string();
    let not_before = validity.not_before.to_system_time();
    let not_after = validity.not_after.to_system_time();
    if now < not_before {
        return (
            Status::Fail,
            format!("{subject:?} is not valid before {}", validity.not_before),
        );
    }
    match not_after.duration_since(now) {
        Err(_) => (
            Status::Fail,
            format!("{subject:?} expired on {}", validity.not_after),
        ),
        Ok(left) if left < WARN_LEFT => {
            let status = if left < FAIL_LEFT {
                Status::Fail
            } else {
                Status::Warn
            };
            let when = format!("{} ({})", days(left), validity.not_after);
            (status, format!("{subject:?} expires in {when}"))
        }
        Ok(left) => (Status::Ok, format!("{subject:?} valid for {}", days(left))),
    }
}

/// One line for the certificate file `path` used as `option`: the worst
/// dates among its certificates.
#[must_use]
pub(crate) fn expiry(name: &'static str, option: &str, path: &Path, now: SystemTime) -> Check {
    use super::report::Status;
    let certs = match read_certs(path) {
        Ok(c) => c,
        Err(e) => {
            return Check::fail(
                name,
                format!("{option}: {e}"),
                format!(
                    "put the PEM certificate(s) at {} or set {option}",
                    path.display()
                ),
            );
        }
    };
    let mut worst = (Status::Ok, String::new());
    for der in &certs {
        let judged = match parse(der, path) {
            Ok(cert) => judge(&cert, now),
            Err(e) => (Status::Fail, e),
        };
        if worst.1.is_empty() || judged.0 > worst.0 {
            worst = judged;
        }
    }
    let count = if certs.len() == 1 {
        String::new()
    } else {
        format!(" ({} certificates, worst shown)", certs.len())
    };
    let detail = format!("{option} {}: {}{count}", path.display(), worst.1);
    let renew = format!(
        "renew the certificate in {} (keylet warns 7 days and fails 3 days before expiry)",
        path.display()
    );
    match worst.0 {
        Status::Ok => Check::ok(name, detail),
        Status::Warn => Check::warn(name, detail, renew),
        _ => Check::fail(name, detail, renew),
    }
}

fn is_ca(cert: &Certificate) -> bool {
    matches!(
        cert.tbs_certificate().get_extension::<BasicConstraints>(),
        Ok(Some((_, bc))) if bc.ca
    )
}

/// Whether the CA bundle files of `option` hold every issuer their
/// certificates name, up to a self-issued root, and only CA certificates.
#[must_use]
pub(crate) fn bundle(name: &'static str, option: &str, paths: &[PathBuf]) -> Check {
    let mut all: Vec<(PathBuf, Certificate)> = Vec::new();
    for path in paths {
        let parsed: Result<Vec<Certificate>, String> =
            read_certs(path).and_then(|certs| certs.iter().map(|d| parse(d, path)).collect());
        match parsed {
            Ok(certs) => all.extend(certs.into_iter().map(|c| (path.clone(), c))),
            Err(e) => {
                return Check::fail(
                    name,
                    format!("{option}: {e}"),
                    format!("put the CA certificate(s) in PEM at the path {option} names"),
                );
            }
        }
    }
    let files: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let files = files.join(", ");
    if all.is_empty() {
        return Check::fail(
            name,
            format!("{option} names no file"),
            format!("set {option} to the CA bundle (PEM)"),
        );
    }
    for (path, cert) in &all {
        if !is_ca(cert) {
            return Check::warn(
                name,
                format!(
                    "{option}: {} holds {:?}, which is not a CA certificate",
                    path.display(),
                    cert.tbs_certificate().subject().to_string()
                ),
                format!(
                    "{option} must hold the CA certificates that sign the peers' certificates, \
                     not a peer certificate"
                ),
            );
        }
        let tbs = cert.tbs_certificate();
        let self_issued = tbs.issuer() == tbs.subject();
        let issuer_present = all
            .iter()
            .any(|(_, other)| other.tbs_certificate().subject() == tbs.issuer());
        if !self_issued && !issuer_present {
            return Check::warn(
                name,
                format!(
                    "{option}: the bundle lacks {:?}, the issuer of {:?} in {}",
                    tbs.issuer().to_string(),
                    tbs.subject().to_string(),
                    path.display()
                ),
                format!(
                    "append the issuing CA certificates up to the root to {}, so that every \
                     Keylime component (OpenSSL needs the root) can build the chain",
                    path.display()
                ),
            );
        }
    }
    Check::ok(
        name,
        format!(
            "{option} {files}: {} CA certificate(s), each issuer present",
            all.len()
        ),
    )
}
