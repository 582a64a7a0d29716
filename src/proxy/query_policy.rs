//! A route's query policy applied to the request's query string, before anything is sent:
//! the same form reading and field paths as form bodies. A strip forwards the kept
//! parameters byte for byte; the audit line gets the removed names, never a value.

use super::decide::{Decision, Verdict};
use crate::json_filter::{self, FormError};
use crate::policy::query::QueryPolicy;
use crate::policy::{Mode, OnViolation};
use crate::vocab::Reason;

/// What the query policy made of the query string.
#[derive(Debug, Default)]
pub struct QueryFate {
    /// The query to send instead (`Some("")`: none at all); `None` sends the original.
    pub replaced: Option<String>,
    /// Names of the removed parameters (or, in report mode, that would have been).
    pub removed: Vec<String>,
}

/// Applies the matched route's query policy. A refusal turns the decision into one (in
/// report mode, a `would_refuse`, and the query passes unchanged). A malformed query
/// string is `bad_request`.
pub fn check(decision: &mut Decision<'_>, query: Option<&str>) -> QueryFate {
    let Some(route) = decision.route else {
        return QueryFate::default();
    };
    let (Some(qp), Verdict::Allow) = (&route.query, decision.verdict) else {
        return QueryFate::default();
    };
    let report = route.mode == Mode::Report || decision.destination.is_some_and(|d| d.mode == Mode::Report);
    let (mut fate, refusal) = evaluate(qp, query.unwrap_or_default());
    match refusal {
        Some(r) if report => {
            decision.would_refuse = decision.would_refuse.or(Some(r));
        }
        Some(r) => decision.verdict = Verdict::Refuse(r),
        None => {}
    }
    if report || refusal.is_some() {
        fate.replaced = None;
    }
    fate
}

fn evaluate(qp: &QueryPolicy, query: &str) -> (QueryFate, Option<Reason>) {
    let mut out = Vec::with_capacity(query.len());
    let outcome = match json_filter::filter_form(query.as_bytes(), &qp.rules, qp.scan_cards, false, &mut out) {
        Ok(o) => o,
        Err(FormError::Malformed | FormError::Duplicate | FormError::Conflict | FormError::TooDeep) => {
            return (QueryFate::default(), Some(Reason::BadRequest))
        }
    };
    let refusal = if qp.scan_cards && outcome.card_found {
        Some(Reason::SensitiveValue)
    } else if qp.on_violation == OnViolation::Reject && !outcome.removed.is_empty() {
        Some(Reason::FieldNotAllowed)
    } else {
        None
    };
    // Kept pairs are copied whole from a `&str`, so the join is UTF-8 too.
    let replaced = (!outcome.removed.is_empty()).then(|| String::from_utf8(out).unwrap_or_default());
    (
        QueryFate {
            replaced,
            removed: outcome.removed,
        },
        refusal,
    )
}
