//! The HTTPS connection to the push-model verifier through [`crate::net`]:
//! one connection kept open for the requests of a round and the next ones
//! (a new one when the verifier closed it), JSON:API bodies, the bearer
//! token, answers checked for their media type and size.

use std::sync::Arc;

use super::PushError;
use super::messages::{self, JSON_API};
use crate::config::PushSettings;
use crate::keylime::JsonError;
use crate::net::{self, Connection, Endpoint, HttpError, Request};

/// The largest answer keylet reads from the verifier (its answers are a few
/// kilobytes; a larger one is refused, not buffered).
pub(crate) const MAX_ANSWER: usize = 256 * 1024;

/// The verifier, as `verifier_url` and `verifier_tls_ca_cert` say.
#[derive(Debug)]
pub struct Verifier {
    endpoint: Endpoint,
    prefix: String,
    /// The agent attesting (`-` before it is known, for checks).
    pub(crate) agent_id: String,
    /// The connection kept open between requests.
    conn: tokio::sync::Mutex<Option<Connection>>,
}

/// A successful answer (2xx) with a JSON body, for the `step` keylet was
/// doing.
#[derive(Debug)]
pub struct Answer {
    step: &'static str,
    pub(crate) status: u16,
    pub body: Vec<u8>,
    pub(crate) location: Option<String>,
}

impl Answer {
    /// The body read with `read`.
    ///
    /// # Errors
    ///
    /// [`PushError::Answer`] with `read`'s error.
    pub fn read<T>(
        &self,
        read: impl FnOnce(&[u8]) -> Result<T, JsonError>,
    ) -> Result<T, PushError> {
        read(&self.body).map_err(|e| PushError::Answer {
            step: self.step,
            detail: e.to_string(),
        })
    }
}

impl Verifier {
    /// The verifier of `settings`, for agent `agent_id`; reads the CA file.
    ///
    /// # Errors
    ///
    /// [`PushError::Setup`] if the CA file cannot be used.
    pub fn new(settings: &PushSettings, agent_id: &str) -> Result<Self, PushError> {
        let tls = net::client_tls_config(&settings.verifier_tls_ca_cert, "verifier_tls_ca_cert")
            .map_err(|e| PushError::Setup(e.to_string()))?;
        let url = &settings.verifier_url;
        Ok(Self {
            endpoint: Endpoint::new(
                &url.host,
                url.port,
                Some(Arc::new(tls)),
                ("verifier_tls_ca_cert", "verifier_url"),
            ),
            prefix: url.prefix.clone(),
            agent_id: agent_id.to_string(),
            conn: tokio::sync::Mutex::new(None),
        })
    }

    /// `scheme://host:port` and prefix, for messages.
    #[must_use]
    pub(crate) fn address(&self) -> String {
        format!("{}{}", self.endpoint, self.prefix)
    }

    /// A v3.0 path under the URL's prefix.
    #[must_use]
    pub fn path(&self, rest: &str) -> String {
        format!("{}/v3.0/{rest}", self.prefix)
    }

    /// This agent's status in Keylime's v2 API, which an agent may read
    /// with its own token.
    #[must_use]
    pub(crate) fn status_path(&self) -> String {
        format!("{}/v2.6/agents/{}", self.prefix, self.agent_id)
    }

    #[must_use]
    pub fn attestations_path(&self) -> String {
        self.path(&format!("agents/{}/attestations", self.agent_id))
    }

    /// The path to `PATCH` the evidence to, from the answer's `Location`:
    /// a path (or a URL on this verifier) to one of this agent's
    /// attestations. Anything else falls back to `.../attestations/latest`,
    /// with the reason.
    #[must_use]
    pub(crate) fn evidence_path(&self, location: Option<&str>) -> (String, Option<String>) {
        let latest = format!("{}/latest", self.attestations_path());
        let Some(loc) = location else {
            return (latest, Some("the verifier sent no Location".into()));
        };
        let own = self.endpoint.to_string();
        let path = loc.strip_prefix(own.as_str()).unwrap_or(loc);
        let prefix = format!("{}/v3", self.prefix);
        let agent = format!("/agents/{}/attestations/", self.agent_id);
        let safe = path.len() <= 512
            && path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
            && !path.contains("..");
        let index_ok = path.split_once(agent.as_str()).is_some_and(|(_, index)| {
            !index.is_empty() && (index == "latest" || index.bytes().all(|b| b.is_ascii_digit()))
        });
        if safe && path.starts_with(&prefix) && index_ok {
            (path.to_string(), None)
        } else {
            let shown: String = loc.chars().take(120).collect();
            (
                latest,
                Some(format!(
                    "the verifier's Location {shown:?} is not an attestation of this agent on this verifier"
                )),
            )
        }
    }

    /// Sends `body` with `method` to `path` (with the bearer `token`) and
    /// returns a 2xx answer whose media type is JSON. A kept connection that
    /// fails is replaced once (the verifier may have closed it while idle,
    /// or restarted); the connection is kept unless the answer could not be
    /// read.
    ///
    /// # Errors
    ///
    /// [`PushError::Http`] without an answer; [`PushError::Status`] for a
    /// non-2xx answer (with the verifier's detail and `Retry-After`);
    /// [`PushError::Answer`] for a 2xx answer that is not JSON.
    pub async fn call(
        &self,
        step: &'static str,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        token: Option<&str>,
    ) -> Result<Answer, PushError> {
        let request = Request {
            method,
            path,
            body: body.map(|b| (JSON_API, b)),
            accept: Some(JSON_API),
            bearer: token,
            max_body: MAX_ANSWER,
        };
        let mut slot = self.conn.lock().await;
        let (mut conn, reused) = match slot.take().filter(|c| !c.is_closed()) {
            Some(c) => (c, true),
            None => {
                log::debug!("connecting to the verifier at {}", self.endpoint);
                (self.endpoint.connect().await?, false)
            }
        };
        let reply = match conn.send(request.clone()).await {
            Err(HttpError::Unreachable { .. }) if reused => {
                log::debug!("the kept connection to the verifier failed; connecting again");
                conn = self.endpoint.connect().await?;
                conn.send(request).await?
            }
            other => other?,
        };
        *slot = Some(conn);
        if !(200..300).contains(&reply.status) {
            return Err(PushError::Status {
                step,
                status: reply.status,
                detail: messages::error_detail(&reply.body).unwrap_or_default(),
                retry_after: reply.retry_after,
            });
        }
        let answer = Answer {
            step,
            status: reply.status,
            body: reply.body,
            location: reply.location,
        };
        // A 2xx answer that is not JSON is refused as an unusable body is.
        answer.read(|_| messages::check_content_type(reply.content_type.as_deref()))?;
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier(prefix: &str) -> Verifier {
        Verifier {
            endpoint: Endpoint::new("127.0.0.1", 18983, None, ("a", "b")),
            prefix: prefix.into(),
            agent_id: "abc".into(),
            conn: tokio::sync::Mutex::new(None),
        }
    }

    #[test]
    fn location_must_name_an_attestation_of_this_agent() {
        let v = verifier("");
        assert_eq!(
            v.evidence_path(Some("/v3.0/agents/abc/attestations/7")),
            ("/v3.0/agents/abc/attestations/7".to_string(), None)
        );
        assert_eq!(
            v.evidence_path(Some("http://127.0.0.1:18983/v3/agents/abc/attestations/0"))
                .0,
            "/v3/agents/abc/attestations/0"
        );
        for bogus in [
            "/v3.0/agents/other/attestations/7",
            "https://evil.example/v3.0/agents/abc/attestations/7",
            "/v3.0/agents/abc/attestations/../../sessions",
            "/v3.0/agents/abc/attestations/",
            "/v3.0/agents/abc/attestations/7?x",
            "/v2.6/agents/abc/attestations/7",
        ] {
            let (path, why) = v.evidence_path(Some(bogus));
            assert_eq!(path, "/v3.0/agents/abc/attestations/latest", "{bogus}");
            assert!(why.is_some(), "{bogus}");
        }
        assert!(v.evidence_path(None).1.is_some());
        let p = verifier("/kl");
        assert_eq!(
            p.evidence_path(Some("/kl/v3.0/agents/abc/attestations/1"))
                .0,
            "/kl/v3.0/agents/abc/attestations/1"
        );
        assert_eq!(p.path("sessions"), "/kl/v3.0/sessions");
    }
}
