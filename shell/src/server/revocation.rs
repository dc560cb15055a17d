//! `POST /v2.x/notifications/revocation` (keylime-protocol §4.10): a
//! verified notification is answered 200 at once and its actions run on the
//! operator's executor; a refused one gets a 400 naming why (the verifier only
//! logs it).

use std::sync::Arc;

use hyper::body::Incoming;

use super::keys::{decode_json, take_body};
use super::response::Reply;
use crate::revocation::{Notification, Revocations};

/// The largest notification body accepted (the verifier's are about 1 KB).
const MAX_BODY: usize = 64 * 1024;

pub(super) async fn post(revocations: Option<&Arc<Revocations>>, body: Incoming) -> Reply {
    let too_large = format!("revocation notification larger than {MAX_BODY} bytes");
    let take = |bytes: &[u8]| {
        let notification = decode_json::<Notification>(bytes)?;
        let Some(revocations) = revocations else {
            log::info!("revocation notification received; revocation handling is off here");
            return Ok(());
        };
        revocations.handle(notification).map_err(|e| e.to_string())
    };
    take_body(body, MAX_BODY, &too_large, "revocation notification", take).await
}
