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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use crate::policy::compile;

    const KEY_FILE: &str = concat!("file:", env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/unit-test-key");

    fn policy(query: &str, tunnel: bool) -> String {
        format!(
            "version: 1\ndestinations:\n  crm:\n    host: api.crm.example\n{}    routes:\n      - methods: [GET]\n        path: /v1/customers\n        query:\n{query}",
            if tunnel { "    tunnel: true\n" } else { "    credential:\n      secret: KEY\n" }
        )
        .replace("KEY", KEY_FILE)
    }

    #[test]
    fn query_blocks() {
        let ok = compile(&policy(
            "          allow: [limit, \"expand[]\"]\n          on_violation: reject\n          scan: [card_number]\n",
            false,
        ))
        .unwrap();
        let route = &ok.destinations[0].routes.as_ref().unwrap()[0];
        let q = route.query.as_ref().unwrap();
        assert_eq!(q.paths, ["limit", "expand[]"]);
        assert!(q.scan_cards);
        #[rustfmt::skip]
        let bad: &[(&str, &str, bool, &str)] = &[
            ("both lists", "          allow: [a]\n          deny: [b]\n", false, "exactly one of `allow` and `deny`"),
            ("neither list", "          on_violation: strip\n", false, "exactly one of `allow` and `deny`"),
            ("bad path", "          deny: [\"a[\"]\n", false, "field path"),
            ("unknown key", "          allow: [a]\n          schema: x\n", false, "unknown field"),
            ("on a tunnel", "          allow: [a]\n", true, "tunnel"),
        ];
        for (name, query, tunnel, word) in bad {
            let errs = compile(&policy(query, *tunnel)).expect_err(name);
            assert!(errs.to_string().contains(word), "{name}: {errs}");
        }
    }
}
