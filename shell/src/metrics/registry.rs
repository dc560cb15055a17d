//! The agent's metrics registry (prometheus-client), the certificate expiry
//! dates it reports, and the start of the metrics listener: the `metrics`
//! feature.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use x509_cert::Certificate;
use x509_cert::der::Decode as _;

use keylet_core::tpm::command_name::snake_case;

use super::{Endpoint, MetricsError, MetricsServer, TpmErrorKind, serve};
use crate::keys::read_certs;

/// Upper bounds (seconds) of the TPM latency buckets: swtpm answers in under a
/// millisecond, discrete TPMs sign in 20-550 ms, key creation takes seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The commands of a quote: their series exist from the start, so timing a
/// quote never creates one.
const QUOTE_COMMANDS: [&str; 4] = ["pcr_reset", "pcr_extend", "pcr_read", "quote"];

type CommandLabels = [(&'static str, &'static str); 1];
type CertLabels = [(&'static str, String); 1];

/// The agent's metrics. Cheap to update from any thread.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// identity ok, identity error, integrity ok, integrity error.
    quotes: [Counter; 4],
    /// Indexed by [`TpmErrorKind`].
    tpm_errors: [Counter; 6],
    tpm_latency: Family<CommandLabels, Histogram, fn() -> Histogram>,
    last_quote: Gauge,
    registered: Gauge,
    /// Push mode: attestations by result (`[accepted, failed]`).
    push_attestations: [Counter; 2],
    verifier_answers: Family<[(&'static str, String); 1], Counter>,
    last_accepted: Gauge,
    last_pass: Gauge,
    cert_expiry: Family<CertLabels, Gauge>,
    cert_files: Vec<PathBuf>,
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Metrics {
    /// Metrics with every series at zero; `cert_files` are the certificate
    /// files whose expiry is reported.
    #[must_use]
    pub fn new(cert_files: Vec<PathBuf>) -> Self {
        let mut registry = Registry::default();
        let family: Family<[(&'static str, &'static str); 2], Counter> = Family::default();
        let quotes = [
            ("identity", "ok"),
            ("identity", "error"),
            ("integrity", "ok"),
            ("integrity", "error"),
        ]
        .map(|(endpoint, result)| {
            family.get_or_create_owned(&[("endpoint", endpoint), ("result", result)])
        });
        registry.register(
            "keylet_quotes",
            "Quote requests that reached the TPM, by endpoint and result",
            family,
        );
        let errors: Family<[(&'static str, &'static str); 1], Counter> = Family::default();
        let tpm_errors =
            TpmErrorKind::LABELS.map(|kind| errors.get_or_create_owned(&[("kind", kind)]));
        registry.register(
            "keylet_tpm_errors",
            "TPM errors by kind: timeout, connection, malformed (frame), retry (RETRY, YIELDED, \
             TESTING answers), response (other error codes), deadline (quotes answered 500 \
             without a TPM answer)",
            errors,
        );
        let tpm_latency: Family<CommandLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS));
        for command in QUOTE_COMMANDS {
            let _ = tpm_latency.get_or_create_owned(&[("command", command)]);
        }
        registry.register(
            "keylet_tpm_command_duration_seconds",
            "Round trip of TPM commands in seconds, by command",
            tpm_latency.clone(),
        );
        let last_quote = Gauge::default();
        registry.register(
            "keylet_last_quote_timestamp_seconds",
            "Unix time of the last successful quote (0: none yet)",
            last_quote.clone(),
        );
        let cert_expiry = Family::<CertLabels, Gauge>::default();
        registry.register(
            "keylet_certificate_expiry_timestamp_seconds",
            "Unix time at which each configured certificate file expires (earliest in a bundle)",
            cert_expiry.clone(),
        );
        let registered = Gauge::default();
        registry.register(
            "keylet_registered",
            "1 once keylet is registered and activated at the registrar, else 0",
            registered.clone(),
        );
        let push: Family<[(&'static str, &'static str); 1], Counter> = Family::default();
        let push_attestations =
            ["accepted", "failed"].map(|r| push.get_or_create_owned(&[("result", r)]));
        registry.register(
            "keylet_push_attestations",
            "Push mode: attestations sent, by result (accepted: the verifier took the evidence; \
             failed: no evidence accepted in that round)",
            push,
        );
        let verifier_answers = Family::<[(&'static str, String); 1], Counter>::default();
        registry.register(
            "keylet_push_verifier_answers",
            "Push mode: the verifier's answers by HTTP status (\"0\": no answer)",
            verifier_answers.clone(),
        );
        let last_accepted = Gauge::default();
        registry.register(
            "keylet_push_last_accepted_timestamp_seconds",
            "Push mode: unix time the verifier last accepted evidence (0: never)",
            last_accepted.clone(),
        );
        let last_pass = Gauge::default();
        registry.register(
            "keylet_push_last_pass_timestamp_seconds",
            "Push mode: unix time of the verifier's last PASS for this agent, as the verifier \
             reports it (0: none seen)",
            last_pass.clone(),
        );
        Self {
            registry,
            quotes,
            last_pass,
            push_attestations,
            verifier_answers,
            last_accepted,
            tpm_errors,
            tpm_latency,
            last_quote,
            registered,
            cert_expiry,
            cert_files,
        }
    }

    /// Counts one quote request; a successful one also sets the last quote time.
    pub(crate) fn quote_served(&self, endpoint: Endpoint, ok: bool) {
        let index = 2 * usize::from(endpoint == Endpoint::Integrity) + usize::from(!ok);
        if let Some(c) = self.quotes.get(index) {
            c.inc();
        }
        if ok {
            self.last_quote.set(now_secs());
        }
    }

    pub(crate) fn tpm_error(&self, kind: TpmErrorKind) {
        if let Some(c) = self.tpm_errors.get(kind as usize) {
            c.inc();
        }
    }

    /// Records one TPM command's round trip (`command` is the frame's code).
    pub(crate) fn tpm_command(&self, command: u32, took: Duration) {
        self.tpm_latency
            .get_or_create(&[("command", command_label(command))])
            .observe(took.as_secs_f64());
    }

    /// Push mode: counts one attestation round; an accepted one also sets
    /// the time of the last accepted evidence.
    pub(crate) fn push_attestation(&self, accepted: bool) {
        if let Some(c) = self.push_attestations.get(usize::from(!accepted)) {
            c.inc();
        }
        if accepted {
            self.last_accepted.set(now_secs());
        }
    }

    /// Push mode: counts one verifier answer with `status` (0: none).
    pub(crate) fn verifier_answer(&self, status: u16) {
        self.verifier_answers
            .get_or_create(&[("status", status.to_string())])
            .inc();
    }

    /// Push mode: the time of the verifier's last PASS for this agent.
    pub(crate) fn set_last_pass(&self, unix: i64) {
        self.last_pass.set(unix);
    }

    pub fn set_registered(&self, registered: bool) {
        self.registered.set(i64::from(registered));
    }

    /// Reads the certificate files' expiry dates again. A file that cannot be
    /// read now (e.g. root-only after the `run_as` drop) keeps the date read
    /// before; one never read is left out.
    pub(crate) fn refresh_certs(&self) {
        for path in &self.cert_files {
            let label = [("path", path.display().to_string())];
            match not_after(path) {
                Ok(t) => {
                    self.cert_expiry.get_or_create(&label).set(t);
                }
                Err(e) if self.cert_expiry.get(&label).is_some() => {
                    log::debug!("metrics: keeping the last expiry read: {e}");
                }
                Err(e) => log::warn!("metrics: {e}"),
            }
        }
    }

    /// The OpenMetrics text of every metric, certificate dates read now.
    #[must_use]
    pub fn render(&self) -> String {
        self.refresh_certs();
        let mut out = String::with_capacity(8 * 1024);
        if let Err(e) = encode(&mut out, &self.registry) {
            log::error!("metrics: encoding failed: {e}");
        }
        out
    }
}

/// The `command` label of a TPM command code: the commands keylet sends by
/// name, anything else as `other`.
fn command_label(code: u32) -> &'static str {
    snake_case(code).unwrap_or("other")
}

/// The earliest `notAfter` (unix seconds) among the certificates in `path`
/// (PEM with any number of certificates, or one DER certificate).
///
/// Errors: A message naming the file: unreadable, or no X.509 certificate in it.
fn not_after(path: &Path) -> Result<i64, String> {
    let certs = read_certs(path, None)
        .map_err(|e| format!("{e} (check the path and that keylet's user may read it)"))?;
    let expiry = |der: &[u8]| {
        let cert = Certificate::from_der(der).ok()?;
        let not_after = cert.tbs_certificate().validity().not_after;
        i64::try_from(not_after.to_unix_duration().as_secs()).ok()
    };
    let earliest = certs.iter().filter_map(|der| expiry(der.as_ref())).min();
    earliest.ok_or_else(|| {
        format!(
            "{} holds no X.509 certificate that parses (expected PEM or DER)",
            path.display()
        )
    })
}

/// The certificate files keylet uses with `c`: its mTLS server certificate
/// and the client CA bundles when mTLS is on (pull mode), the verifier's CA
/// in push mode, the registrar CA when registering over TLS.
#[must_use]
fn configured_cert_files(c: &crate::config::AgentConfig) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if c.push.mode == crate::config::AttestationMode::Push {
        files.push(c.push.verifier_tls_ca_cert.clone());
    } else if c.enable_agent_mtls {
        files.push(c.server_cert.clone());
        files.extend(c.trusted_client_ca.iter().cloned());
    }
    if c.registrar_tls_enabled {
        files.push(c.registrar_tls_ca_cert.clone());
    }
    files.dedup();
    files
}

/// Starts the metrics listener if `metrics_listen` is set: the metrics to
/// update and the listener (stopped when dropped); `(None, None)` when off.
///
/// # Errors
///
/// [`MetricsError`] if the address cannot be bound.
pub async fn start(
    c: &crate::config::AgentConfig,
) -> Result<(Option<Arc<Metrics>>, Option<MetricsServer>), MetricsError> {
    let Some(addr) = c.metrics_listen else {
        return Ok((None, None));
    };
    let metrics = Arc::new(Metrics::new(configured_cert_files(c)));
    // Read once now: after a run_as drop the files may be unreadable.
    metrics.refresh_certs();
    let server = serve(addr, Arc::clone(&metrics)).await?;
    Ok((Some(metrics), Some(server)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_quote_path_and_folds_the_rest() {
        for (code, name) in [
            (0x0000_0158, "quote"),
            (0x0000_017E, "pcr_read"),
            (0x0000_0182, "pcr_extend"),
            (0x0000_013D, "pcr_reset"),
            (0x0000_0165, "flush_context"),
            (0x0000_0145, "other"), // TPM2_Shutdown
            (0xdead_beef, "other"),
        ] {
            assert_eq!(command_label(code), name, "{code:#x}");
        }
    }
}
