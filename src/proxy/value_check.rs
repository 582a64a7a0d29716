//! A route's `schema:` applied to the body enforcement would send (after the
//! field filter), once per request on a body already bounded by
//! `max_body_bytes`. JSON bodies only: any other body on a route with a
//! schema is refused, since nothing could vouch for it.

use http::HeaderMap;

use super::body_policy::is_json;
use crate::policy::BodyPolicy;
use crate::vocab::Reason;

/// Why a body failed its schema: the refusal, and for the audit line the
/// field path and keyword (`shipping.postcode: pattern`), never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub reason: Reason,
    pub detail: String,
}

/// Checks `body` (the filtered one) against the route's schema, if it has one.
pub fn check(bp: &BodyPolicy, headers: &HeaderMap, body: &[u8]) -> Result<(), Invalid> {
    let Some(schema) = &bp.schema else { return Ok(()) };
    // The filter lets a bodiless request through (no body, no type): nothing is sent to validate.
    if body.is_empty() && !headers.contains_key(http::header::CONTENT_TYPE) {
        return Ok(());
    }
    if !is_json(headers) {
        return Err(Invalid {
            reason: Reason::UnsupportedMediaType,
            detail: "(body): a schema checks JSON bodies only".to_owned(),
        });
    }
    // The filter accepted these bytes; a JSON reader that does not (a lone
    // UTF-16 surrogate) means the two disagree: refused, not guessed at.
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| Invalid {
        reason: Reason::MalformedBody,
        detail: "(body): not readable as JSON".to_owned(),
    })?;
    schema.check(&value).map_err(|v| Invalid {
        reason: Reason::InvalidValue,
        detail: v.to_string(),
    })
}
