//! Revocation notifications (`POST /v2.x/notifications/revocation`): the
//! verifier tells every agent when another one failed. keylet checks the
//! signature with the revocation certificate ([`notice`]) and, when enabled,
//! runs the revocation actions ([`actions`]).
//!
//! A build without the `payload` feature answers notifications and does
//! nothing else: no [`Revocations`] exists there, and
//! `enable_revocation_actions` is refused when the configuration is read.

#[cfg(feature = "payload")]
pub mod actions;
#[cfg(feature = "payload")]
pub mod notice;

use std::path::PathBuf;
use std::sync::Arc;

#[cfg(feature = "payload")]
pub use crate::keylime::revocation::Notification;
#[cfg(feature = "payload")]
pub use notice::Notice;
/// A notification's body: read as JSON, not used in this build.
#[cfg(not(feature = "payload"))]
pub(crate) type Notification = serde::de::IgnoredAny;

use crate::config::RevocationConfig;

/// The certificate file of a payload made by `keylime_tenant --cert`.
#[cfg(feature = "payload")]
pub(crate) const PAYLOAD_CERT: &str = "RevocationNotifier-cert.crt";

/// Revocation handling for one agent.
#[derive(Debug, Clone)]
pub struct Revocations {
    config: RevocationConfig,
    /// The unpacked payload (`secure/unzipped`), when payloads are accepted.
    payload_dir: Option<PathBuf>,
    /// keylet's `keylime_dir`, where actions run and their input file is
    /// written.
    work_dir: PathBuf,
}

impl Revocations {
    /// `None` in a build without the payload feature.
    #[must_use]
    pub fn new(
        config: RevocationConfig,
        payload_dir: Option<PathBuf>,
        work_dir: PathBuf,
    ) -> Option<Arc<Self>> {
        let revocations = Self {
            config,
            payload_dir,
            work_dir,
        };
        cfg!(feature = "payload").then(|| Arc::new(revocations))
    }
}

#[cfg(not(feature = "payload"))]
impl Revocations {
    /// Never called: [`Revocations::new`] makes none in this build.
    pub(crate) fn handle(
        self: &Arc<Self>,
        _notification: Notification,
    ) -> Result<(), RevocationError> {
        Ok(())
    }
}

#[cfg(feature = "payload")]
impl Revocations {
    /// Checks a notification with the revocation certificate (the configured
    /// one, or the payload's). Cheap: no action runs here.
    ///
    /// # Errors
    ///
    /// [`RevocationError`] naming why it is refused.
    pub fn verify(&self, notification: Notification) -> Result<Notice, RevocationError> {
        use crate::config::RevocationCert;
        let cert = match (&self.config.cert, &self.payload_dir) {
            (RevocationCert::File(p), _) => p.clone(),
            (RevocationCert::FromPayload, Some(dir)) => dir.join(PAYLOAD_CERT),
            (RevocationCert::FromPayload, None) => PathBuf::from(PAYLOAD_CERT),
        };
        notice::verify(notification, &cert)
    }

    /// Runs the actions for a verified notice (blocking; logs the outcome).
    /// Returns whether every action succeeded.
    pub fn act(&self, notice: &Notice) -> bool {
        if !self.config.enable_actions {
            log::warn!(
                "verified revocation notification for agent {}: no action runs (set \
                 enable_revocation_actions = true to run revocation actions)",
                notice.agent_id
            );
            return true;
        }
        let outcome = actions::plan(&self.config, self.payload_dir.as_deref()).and_then(|plan| {
            if plan.is_empty() {
                log::warn!(
                    "verified revocation notification for agent {}: no action is configured",
                    notice.agent_id
                );
            }
            actions::run(&plan, notice, &self.work_dir)
        });
        match &outcome {
            Ok(()) => log::info!("revocation actions for agent {} done", notice.agent_id),
            Err(e) => log::error!("revocation for agent {}: {e}", notice.agent_id),
        }
        outcome.is_ok()
    }

    /// Checks `notification` and, when it verifies, queues the actions on
    /// the operator's executor (the verifier is answered at once; quotes
    /// never wait for the actions).
    ///
    /// Errors: [`RevocationError`] naming why the notification is refused.
    pub(crate) fn handle(
        self: &Arc<Self>,
        notification: Notification,
    ) -> Result<(), RevocationError> {
        let notice = self.verify(notification)?;
        log::warn!(
            "the verifier reports that agent {} failed attestation (signed revocation \
             notification)",
            notice.agent_id
        );
        let revocations = Arc::clone(self);
        let agent_id = notice.agent_id.clone();
        if let Err(e) = crate::executor::operator::submit(move || revocations.act(&notice)) {
            log::error!("revocation actions for agent {agent_id} do not run: {e}");
        }
        Ok(())
    }
}

/// Why a revocation notification was refused or its actions failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationError {
    /// The body is not `{"msg": "...", "signature": "..."}`.
    #[error("malformed revocation notification: {0}")]
    Malformed(String),
    #[error(
        "the revocation notification is not signed; keylet acts only on notifications \
         signed with the revocation key (add agents with keylime_tenant --cert)"
    )]
    Unsigned,
    #[error(
        "no revocation certificate at {} to check the notification with (deliver a \
         payload with keylime_tenant --cert, or set revocation_cert)",
        .0.display()
    )]
    NoCertificate(PathBuf),
    #[error("the revocation certificate {path} cannot be used: {1}", path = .0.display())]
    BadCertificate(PathBuf, String),
    #[error(
        "the revocation notification's signature does not verify with {}; refused (a \
         forged notification, or a certificate from another CA)",
        .0.display()
    )]
    BadSignature(PathBuf),
    /// An action could not be found or failed.
    #[error("revocation action: {0}")]
    Action(String),
}
