//! `POST /v2.x/notifications/revocation` (keylime-protocol §4.10): a
//! verified notification is answered 200 at once and its actions run on the
//! operator's executor; a refused one gets a 400 naming why (the verifier only
//! logs it).

use std::sync::Arc;

use hyper::StatusCode;
use hyper::body::Body;

use super::keys::{decode_json, read_body, refuse};
use super::response::{self, Empty, Reply};
use crate::revocation::{Notification, Revocations};

/// The largest notification body accepted (the verifier's are about 1 KB).
const MAX_BODY: usize = 64 * 1024;

/// Handles one notification.
pub(super) async fn post<B>(revocations: Option<&Arc<Revocations>>, body: B) -> Reply
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let too_large = format!("revocation notification larger than {MAX_BODY} bytes");
    let read = match read_body(body, MAX_BODY, &too_large).await {
        Ok(read) => read.and_then(|bytes| decode_json::<Notification>(&bytes)),
        Err(reply) => return reply,
    };
    let notification = match read {
        Ok(n) => n,
        Err(message) => return refuse("revocation notification", &message),
    };
    let Some(revocations) = revocations else {
        log::info!("revocation notification received; revocation handling is off here");
        return response::success(&Empty {});
    };
    match revocations.handle(notification) {
        Ok(()) => response::success(&Empty {}),
        Err(e) => {
            log::warn!("revocation notification refused: {e}");
            response::error(StatusCode::BAD_REQUEST, &e.to_string())
        }
    }
}
