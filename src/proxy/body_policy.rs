//! A route's body policy applied to one buffered request body: the checks
//! docs/policy.md lists (JSON or urlencoded forms only, no compression, size, duplicate keys, depth),
//! then the field filter and the card scan. Pure, so `explain` shows exactly
//! what `run` would send.

use http::{header, HeaderMap};

use crate::json_filter::mediatype::{self, Kind};
use crate::json_filter::{self, BodyError};
use crate::policy::{BodyPolicy, Mode, OnViolation};
use crate::vocab::Reason;

/// What the policy did to one body.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The body to send instead; `None` sends the original.
    pub replaced: Option<Vec<u8>>,
    /// Field names removed (or, in report mode, that would have been).
    pub removed: Vec<String>,
    /// In report mode: the refusal enforcement would have given.
    pub would_refuse: Option<Reason>,
    /// Every field name in the body (anomaly detection learns them).
    pub fields: Vec<String>,
}

pub fn apply(bp: &BodyPolicy, mode: Mode, headers: &HeaderMap, input: &[u8]) -> Result<Outcome, Reason> {
    apply_noting(bp, mode, headers, input, &mut None)
}

/// `apply`; when the filtered body fails the route's `schema`, `invalid`
/// gets the field path and keyword for the audit line (refused or, in
/// report mode, passed).
pub fn apply_noting(
    bp: &BodyPolicy,
    mode: Mode,
    headers: &HeaderMap,
    input: &[u8],
    invalid: &mut Option<String>,
) -> Result<Outcome, Reason> {
    let mut out = Vec::with_capacity(input.len());
    let (found, mut refusal) = evaluate(bp, headers, input, &mut out);
    if refusal.is_none() {
        // The schema judges what enforcement would send: the filtered body.
        let sent = if found.removed.is_empty() { input } else { &out };
        if let Err(e) = super::value_check::check(bp, headers, sent) {
            refusal = Some(e.reason);
            *invalid = Some(e.detail);
        }
    }
    match refusal {
        None => {
            let replaced = (mode == Mode::Enforce && !found.removed.is_empty()).then_some(out);
            Ok(Outcome {
                replaced,
                removed: found.removed,
                would_refuse: None,
                fields: found.fields,
            })
        }
        Some(r) if mode == Mode::Report => Ok(Outcome {
            replaced: None,
            removed: found.removed,
            would_refuse: Some(r),
            fields: found.fields,
        }),
        Some(r) => Err(r),
    }
}

/// What the filter found, whatever the verdict.
#[derive(Default)]
struct Found {
    removed: Vec<String>,
    fields: Vec<String>,
}

fn evaluate(bp: &BodyPolicy, headers: &HeaderMap, input: &[u8], out: &mut Vec<u8>) -> (Found, Option<Reason>) {
    let encoded = headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .any(|v| !v.to_str().is_ok_and(|s| s.trim().eq_ignore_ascii_case("identity")));
    if encoded {
        return (Found::default(), Some(Reason::UnsupportedMediaType));
    }
    if input.is_empty() && !headers.contains_key(header::CONTENT_TYPE) {
        return (Found::default(), None);
    }
    // New-field detection needs every name. An allow list removes every name
    // it does not know, so there `removed` already holds the new ones and the
    // costlier collecting pass is needed only for deny lists.
    let collect = bp.mode == json_filter::ListMode::Deny;
    let filtered = match media_type(headers) {
        Some(Kind::Json) if collect => json_filter::filter_collect(input, &bp.rules, bp.scan_cards, out),
        Some(Kind::Json) => json_filter::filter(input, &bp.rules, bp.scan_cards, out),
        // Forms (PHP's http_build_query) go through the same field paths; see `json_filter::form`.
        Some(Kind::Form) => json_filter::filter_form(input, &bp.rules, bp.scan_cards, collect, out)
            .map_err(|_: json_filter::FormError| BodyError::Malformed),
        _ => return (Found::default(), Some(Reason::UnsupportedMediaType)),
    };
    let outcome = match filtered {
        Ok(o) => o,
        Err(BodyError::Malformed | BodyError::DuplicateKey | BodyError::TooDeep) => {
            return (Found::default(), Some(Reason::MalformedBody))
        }
    };
    let fields = match bp.mode {
        json_filter::ListMode::Deny => outcome.fields,
        json_filter::ListMode::Allow => outcome.removed.clone(),
    };
    let refusal = if bp.scan_cards && outcome.card_found {
        Some(Reason::SensitiveValue)
    } else if bp.on_violation == OnViolation::Reject && !outcome.removed.is_empty() {
        Some(Reason::FieldNotAllowed)
    } else {
        None
    };
    (
        Found {
            removed: outcome.removed,
            fields,
        },
        refusal,
    )
}

/// What the one `Content-Type` says the body is, read strictly (see `json_filter::mediatype`):
/// `None` for several `Content-Type` fields, none, a malformed one, a duplicated
/// parameter or a charset other than `utf-8`.
pub fn media_type(headers: &HeaderMap) -> Option<Kind> {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let (Some(v), None) = (values.next(), values.next()) else {
        return None;
    };
    mediatype::parse(v.as_bytes()).ok()
}

/// `application/json` or `application/<anything>+json`, in UTF-8 (no charset or `utf-8`).
pub fn is_json(headers: &HeaderMap) -> bool {
    media_type(headers) == Some(Kind::Json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn json_content_types() {
        let cases: &[(&str, bool)] = &[
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("application/json; charset=\"UTF-8\"", true),
            ("application/vnd.api+json", true),
            ("application/json; charset=utf-7", false),
            ("application/json; charset=utf8", false),
            ("application/json; charset=utf-8; charset=utf-8", false),
            ("application/json; charset = utf-8", false),
            ("text/plain", false),
            ("application/x-www-form-urlencoded", false),
            ("multipart/form-data; boundary=x", false),
        ];
        for (ct, want) in cases {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
            assert_eq!(is_json(&h), *want, "{ct}");
        }
        assert!(!is_json(&HeaderMap::new()), "no content type");
        let mut two = HeaderMap::new();
        two.append(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        two.append(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        assert!(!is_json(&two), "two content types, even equal ones");
    }
}
