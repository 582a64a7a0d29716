//! A route's `query:` block: allow or deny field paths for query-string parameters, what a
//! violation does, and what to scan for. Parameters are read like form bodies (bracket
//! notation included) by the same trie the body filter uses.

use super::compile::{at, key};
use super::errors::Errors;
use super::locate::Step;
use super::raw::{OnViolation, RawQuery, Scan};
use crate::json_filter::{FieldPath, FieldRules, ListMode};

#[derive(Debug)]
pub struct QueryPolicy {
    pub mode: ListMode,
    /// The field paths as the policy writes them.
    pub paths: Vec<String>,
    pub rules: FieldRules,
    pub on_violation: OnViolation,
    pub scan_cards: bool,
}

pub(super) fn compile_query(q: &RawQuery, path: &[Step], errs: &mut Errors) -> Option<QueryPolicy> {
    let (mode, list, list_key) = match (&q.allow, &q.deny) {
        (Some(a), None) => (ListMode::Allow, a, "allow"),
        (None, Some(d)) => (ListMode::Deny, d, "deny"),
        _ => {
            errs.push(path, "a query policy has exactly one of `allow` and `deny`");
            return None;
        }
    };
    let mut paths = Vec::with_capacity(list.len());
    for (i, p) in list.iter().enumerate() {
        match FieldPath::parse(p) {
            Ok(fp) => paths.push(fp),
            Err(e) => errs.push(&at(path, &[key(list_key), Step::Index(i)]), format!("field path: {e}")),
        }
    }
    if paths.len() != list.len() {
        return None;
    }
    Some(QueryPolicy {
        mode,
        paths: list.clone(),
        rules: FieldRules::new(mode, paths),
        on_violation: q.on_violation.unwrap_or(OnViolation::Strip),
        scan_cards: q.scan.contains(&Scan::CardNumber),
    })
}
