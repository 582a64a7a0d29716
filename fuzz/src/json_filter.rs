//! The JSON body filter as a route applies it (`egress_guard::proxy::body_policy::apply`, enforce
//! mode, `on_violation: strip`), once with an allow list and once with a deny list.
//!
//! Properties (docs/policy.md: the policy file's field paths; "Request bodies and names, strictly";
//! invariant 4), for a body the filter accepts: serde_json reads the body and what is
//! forwarded; the body has no duplicate key and no key holding a control character; with
//! the deny list, no forwarded key sits at a denied path, keys compared
//! ASCII-case-insensitively; with the allow list, every forwarded value lies inside an
//! allowed path's subtree or is an object or array on the way to one (keys exact).

use std::sync::OnceLock;

use egress_guard::json_filter::{FieldPath, FieldRules, ListMode as Mode};
use egress_guard::policy::{self, BodyPolicy, OnViolation};
use egress_guard::proxy::body_policy as bodypolicy;
use http::{header, HeaderMap, HeaderValue};

use crate::json_tree::{self, Json, Step};

/// An allow list like the shipper route of `policy.yaml`, with `*` and nested `[]`.
pub const ALLOW: &[&str] = &[
    "order_id",
    "shipping.first_name",
    "shipping.last_name",
    "shipping.address_1",
    "shipping.city",
    "shipping.postcode",
    "shipping.country",
    "line_items[].sku",
    "line_items[].quantity",
    "meta.*",
    "[].id",
    "grid[][].v",
];

/// A deny list like the payments route, with `*`, `[]` and a top-level array path.
pub const DENY: &[&str] = &[
    "customer_note",
    "billing.email",
    "billing.phone",
    "*.password",
    "line_items[].meta_data",
    "payment.card.number",
    "[].secret",
    "api_key",
];

pub fn check(data: &[u8]) {
    static POLICIES: OnceLock<[BodyPolicy; 2]> = OnceLock::new();
    let policies = POLICIES.get_or_init(|| {
        [
            body_policy(Mode::Allow, ALLOW, false),
            body_policy(Mode::Deny, DENY, true),
        ]
    });
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for bp in policies {
        let Ok(outcome) = bodypolicy::apply(bp, policy::Mode::Enforce, &headers, data) else {
            continue;
        };
        let input = json_tree::parse(data)
            .unwrap_or_else(|e| panic!("json_filter ({:?}): accepted a body serde_json refuses: {e}", bp.mode));
        check_names(&input);
        let sent = outcome.replaced.as_deref().unwrap_or(data);
        let output = json_tree::parse(sent)
            .unwrap_or_else(|e| panic!("json_filter ({:?}): forwarded a body serde_json refuses: {e}", bp.mode));
        match bp.mode {
            Mode::Deny => check_deny(&output),
            Mode::Allow => check_allow(&output),
        }
    }
}

fn body_policy(mode: Mode, list: &[&str], scan_cards: bool) -> BodyPolicy {
    let paths: Vec<FieldPath> = list.iter().filter_map(|p| FieldPath::parse(p).ok()).collect();
    assert_eq!(
        paths.len(),
        list.len(),
        "json_filter: a fixed field path does not parse"
    );
    BodyPolicy {
        mode,
        paths: list.iter().map(|p| (*p).to_owned()).collect(),
        rules: FieldRules::new(mode, paths),
        on_violation: OnViolation::Strip,
        scan_cards,
        schema: None,
    }
}

/// A body the filter accepts has no duplicate key (parsers disagree on which one wins) and
/// no key holding a control character (docs/policy.md: `malformed_body`).
fn check_names(doc: &Json) {
    json_tree::walk(doc, &mut |path, v| {
        let Json::Object(members) = v else { return };
        for (i, (k, _)) in members.iter().enumerate() {
            assert!(
                !k.chars().any(|c| c.is_ascii_control()),
                "json_filter: accepted a key holding a control character: {k:?} in {path:?}"
            );
            assert!(
                !members.iter().skip(i + 1).any(|(other, _)| other == k),
                "json_filter: accepted a duplicate key {k:?} in {path:?}"
            );
        }
    });
}

/// One segment of a field path, parsed here independently of the filter's own grammar.
#[derive(Debug)]
enum Seg {
    Key(&'static str),
    Any,
    Each,
}

fn segments(path: &'static str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let name = part.trim_end_matches("[]");
        match name {
            "" => {}
            "*" => out.push(Seg::Any),
            k => out.push(Seg::Key(k)),
        }
        out.extend((0..(part.len() - name.len()) / 2).map(|_| Seg::Each));
    }
    out
}

/// Whether `steps` walk down `segs` (same length, step by step); deny lists compare keys
/// ASCII-case-insensitively, allow lists exactly.
fn matches(steps: &[Step], segs: &[Seg], case_insensitive: bool) -> bool {
    steps.len() == segs.len()
        && steps.iter().zip(segs).all(|(step, seg)| match (step, seg) {
            (Step::Key(_), Seg::Any) | (Step::Index(_), Seg::Each) => true,
            (Step::Key(k), Seg::Key(s)) if case_insensitive => k.eq_ignore_ascii_case(s),
            (Step::Key(k), Seg::Key(s)) => k == s,
            _ => false,
        })
}

fn check_deny(doc: &Json) {
    let denied: Vec<(&str, Vec<Seg>)> = DENY.iter().map(|p| (*p, segments(p))).collect();
    json_tree::walk(doc, &mut |path, _| {
        if let Some((p, _)) = denied.iter().find(|(_, segs)| matches(path, segs, true)) {
            panic!("json_filter (Deny): forwarded {path:?}, which the deny path {p:?} removes");
        }
    });
}

fn check_allow(doc: &Json) {
    let allowed: Vec<Vec<Seg>> = ALLOW.iter().map(|p| segments(p)).collect();
    json_tree::walk(doc, &mut |path, v| {
        if path.is_empty() {
            return;
        }
        let inside = allowed
            .iter()
            .any(|segs| segs.len() <= path.len() && matches(&path[..segs.len()], segs, false));
        let on_the_way = allowed
            .iter()
            .any(|segs| path.len() < segs.len() && matches(path, &segs[..path.len()], false));
        let container = matches!(v, Json::Object(_) | Json::Array(_));
        assert!(
            inside || (on_the_way && container),
            "json_filter (Allow): forwarded {path:?} = {v:?}, outside every allowed path"
        );
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_parse() {
        assert_eq!(
            format!("{:?}", segments("grid[][].v")),
            "[Key(\"grid\"), Each, Each, Key(\"v\")]"
        );
        assert_eq!(format!("{:?}", segments("[].id")), "[Each, Key(\"id\")]");
        assert_eq!(format!("{:?}", segments("*.password")), "[Any, Key(\"password\")]");
    }

    #[test]
    fn the_checks_catch_what_they_should() {
        let doc = |s: &str| json_tree::parse(s.as_bytes()).unwrap();
        assert!(std::panic::catch_unwind(|| check_deny(&doc(r#"{"Customer_Note":1}"#))).is_err());
        assert!(std::panic::catch_unwind(|| check_deny(&doc(r#"{"x":{"PassWord":1}}"#))).is_err());
        check_deny(&doc(r#"{"billing":{"city":"x"},"customer":{"note":1}}"#));
        assert!(std::panic::catch_unwind(|| check_allow(&doc(r#"{"shipping":{"phone":1}}"#))).is_err());
        assert!(std::panic::catch_unwind(|| check_allow(&doc(r#"{"shipping":"x"}"#))).is_err());
        check_allow(&doc(
            r#"{"order_id":{"any":[1]},"line_items":[{"sku":"a"}],"meta":{"k":1}}"#,
        ));
        assert!(std::panic::catch_unwind(|| check_names(&doc(r#"{"a":1,"\u0061":2}"#))).is_err());
    }
}
