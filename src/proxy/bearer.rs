//! An OAuth2 destination's token on a request: fetched (or taken from the
//! cache) only once the request is going out with its credential, put in
//! place of the placeholder `headers::outbound` injected, and dropped from
//! the cache when the upstream answers 401 to it.

use std::sync::Arc;

use http::{HeaderMap, StatusCode};

use crate::credentials::Issued;
use crate::policy::Destination;
use crate::scrub::Forms;
use crate::store::Snapshot;
use crate::vocab::Reason;

/// Replaces the placeholder with `Bearer <token>`. Nothing to do when the
/// destination has no OAuth2 credential or the request goes without it (no
/// route matched, or report mode took it back out).
pub(super) async fn bearer(
    snap: &Snapshot,
    dest: &Destination,
    headers: &mut HeaderMap,
) -> Result<Option<Issued>, Reason> {
    let Some(cred) = dest.credential.as_ref() else {
        return Ok(None);
    };
    let Some(cfg) = cred.oauth2.as_ref() else {
        return Ok(None);
    };
    if headers.get(&cred.header) != Some(&cred.value) {
        return Ok(None);
    }
    // Fail closed: without a cache (cannot happen for an installed policy) nothing is sent.
    let cell = snap.token_of(dest.index).ok_or(Reason::CredentialUnavailable)?;
    let issued = cell.get(cfg, &dest.name).await?;
    headers.insert(cred.header.clone(), issued.value.clone());
    Ok(Some(issued))
}

/// After the answer's head: a 401 drops the token so the next request
/// fetches a fresh one. Returns the token's forms for the answer's scrubber.
pub(super) fn after(
    snap: &Snapshot,
    dest: &Destination,
    token: Option<Issued>,
    status: StatusCode,
) -> Option<Arc<Forms>> {
    let issued = token?;
    if status == StatusCode::UNAUTHORIZED {
        if let Some(cell) = snap.token_of(dest.index) {
            cell.rejected(issued.serial);
        }
    }
    Some(issued.forms)
}
