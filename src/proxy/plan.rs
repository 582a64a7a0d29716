//! What the policy makes of a request before any byte of its body is read,
//! as one pure function: `forward` serves by it and `explain` prints it, so
//! the dry run and the real request cannot drift apart.

use std::sync::Arc;

use http::{header, HeaderMap, Method};

use super::decide::{decide, Decision, Verdict};
use super::method_override::{self, FormCheck};
use super::query_policy::{self, QueryFate};
use super::target::Target;
use crate::policy::{Destination, Mode, Policy};
use crate::vocab::Reason;

/// The decision (always, for the audit line) and, when the request may go on,
/// what going on needs.
pub struct Plan<'p> {
    pub decision: Decision<'p>,
    pub go: Result<Go<'p>, Reason>,
    /// The route's query policy applied: the query to send, the names removed.
    pub query: QueryFate,
}

/// An allowed request: its destination, the body length it declared (already
/// within `max_body_bytes`), whether report mode applies, and the `_method`
/// check its form body still needs.
pub struct Go<'p> {
    pub dest: &'p Arc<Destination>,
    pub declared: Option<u64>,
    pub report: bool,
    pub form: Option<FormCheck<'p>>,
}

/// Decides `target`, checks the query's `_method`, the declared length (or
/// `known_len`, a body already at hand) against the size bound, and sets up
/// the form check. Reads the headers as the client sent them.
pub fn plan<'p>(
    policy: &'p Policy,
    method: &Method,
    target: &Target,
    headers: &HeaderMap,
    known_len: Option<u64>,
) -> Plan<'p> {
    let mut decision = decide(policy, &target.ask(method));
    method_override::check_query(&mut decision, method, target.query.as_deref());
    let query = query_policy::check(&mut decision, target.query.as_deref());
    let go = go(policy, &decision, method, headers, known_len);
    Plan { decision, go, query }
}

fn go<'p>(
    policy: &'p Policy,
    decision: &Decision<'p>,
    method: &Method,
    headers: &HeaderMap,
    known_len: Option<u64>,
) -> Result<Go<'p>, Reason> {
    if let Verdict::Refuse(reason) = decision.verdict {
        return Err(reason);
    }
    let dest = decision.destination.ok_or(Reason::DestinationNotAllowed)?;
    let declared = declared_length(headers)?;
    if known_len
        .or(declared)
        .is_some_and(|n| n > policy.defaults.max_body_bytes)
    {
        return Err(Reason::BodyTooLarge);
    }
    let report = dest.mode == Mode::Report || decision.route.is_some_and(|r| r.mode == Mode::Report);
    Ok(Go {
        dest,
        declared,
        report,
        form: FormCheck::new(decision, method, headers),
    })
}

/// The `Content-Length` a client declared. Several differing values are a
/// smuggling attempt; so is one beside `Transfer-Encoding`.
fn declared_length(headers: &HeaderMap) -> Result<Option<u64>, Reason> {
    let mut found: Option<u64> = None;
    for v in headers.get_all(header::CONTENT_LENGTH) {
        let n: u64 = v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or(Reason::BadRequest)?;
        if found.is_some_and(|f| f != n) {
            return Err(Reason::BadRequest);
        }
        found = Some(n);
    }
    if found.is_some() && headers.contains_key(header::TRANSFER_ENCODING) {
        return Err(Reason::BadRequest);
    }
    Ok(found)
}
