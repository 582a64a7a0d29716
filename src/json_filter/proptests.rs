//! Property tests: random documents and policies over a small key alphabet (so paths hit),
//! checked against a straightforward recursive model and the policy invariants; and field
//! names over arbitrary keys (escaped or not) checked against a recursive reference.

use super::{filter, filter_collect, FieldPath, FieldRules, ListMode};
use proptest::prelude::*;
use serde_json::{Map, Value};

const KEYS: &[&str] = &["a", "b", "c", "email"];

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Idx,
}

#[derive(Debug, Clone, PartialEq)]
enum Pat {
    Key(String),
    Any,
    Each,
}

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(KEYS).prop_map(str::to_owned)
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(vec!["x", "", "é\"\\\n", "4111111111111111", "1e400"]).prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Paths over the same alphabet: `[]` prefix, keys or `*`, each with optional `[]`s.
fn path() -> impl Strategy<Value = (String, Vec<Pat>)> {
    let seg = (
        prop_oneof![3 => key().prop_map(Pat::Key), 1 => Just(Pat::Any)],
        0..3usize,
    );
    (0..2usize, prop::collection::vec(seg, 1..4)).prop_map(|(lead, segs)| {
        let mut text = "[]".repeat(lead);
        let mut pats = vec![Pat::Each; lead];
        for (i, (p, each)) in segs.into_iter().enumerate() {
            if i > 0 || lead > 0 {
                text.push('.');
            }
            text.push_str(match &p {
                Pat::Key(k) => k,
                _ => "*",
            });
            text.push_str(&"[]".repeat(each));
            pats.push(p);
            pats.extend(std::iter::repeat_n(Pat::Each, each));
        }
        (text, pats)
    })
}

fn step_matches(p: &Pat, s: &Step) -> bool {
    match (p, s) {
        (Pat::Key(k), Step::Key(s)) => k == s,
        (Pat::Any, Step::Key(_)) => true,
        (Pat::Each, Step::Idx) => true,
        _ => false,
    }
}

/// A deny list's reading: `[]` is also every member of an object and `*` every element
/// of an array (PHP and JavaScript walk both alike).
fn step_matches_lenient(p: &Pat, s: &Step) -> bool {
    step_matches(p, s) || matches!((p, s), (Pat::Each, Step::Key(_)) | (Pat::Any, Step::Idx))
}

/// Some pattern matches a prefix of `at`: the node is at or under a listed path.
fn covered(pats: &[Vec<Pat>], at: &[Step]) -> bool {
    pats.iter()
        .any(|p| p.len() <= at.len() && p.iter().zip(at).all(|(p, s)| step_matches(p, s)))
}

/// `covered` the deny list's way.
fn denied(pats: &[Vec<Pat>], at: &[Step]) -> bool {
    pats.iter()
        .any(|p| p.len() <= at.len() && p.iter().zip(at).all(|(p, s)| step_matches_lenient(p, s)))
}

/// `at` is a proper prefix of some pattern whose next step is `next` (on the way to it).
fn on_way(pats: &[Vec<Pat>], at: &[Step], next: fn(&Pat) -> bool) -> bool {
    pats.iter().any(|p| {
        p.len() > at.len() && p.iter().zip(at).all(|(p, s)| step_matches(p, s)) && p.get(at.len()).is_some_and(next)
    })
}

/// Reference semantics, written the obvious recursive way.
fn model(v: &Value, at: &mut Vec<Step>, allow: bool, pats: &[Vec<Pat>]) -> Option<Value> {
    let top = at.is_empty();
    if (allow && covered(pats, at)) || (!allow && denied(pats, at)) {
        return if allow { Some(v.clone()) } else { None };
    }
    let way = match v {
        Value::Object(_) => top || on_way(pats, at, |p| !matches!(p, Pat::Each)),
        Value::Array(_) => top || on_way(pats, at, |p| matches!(p, Pat::Each)),
        _ => top,
    };
    if allow && !way {
        return None;
    }
    Some(match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter_map(|(k, c)| {
                    at.push(Step::Key(k.clone()));
                    let r = model(c, at, allow, pats);
                    at.pop();
                    Some((k.clone(), r?))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .filter_map(|c| {
                    at.push(Step::Idx);
                    let r = model(c, at, allow, pats);
                    at.pop();
                    r
                })
                .collect(),
        ),
        _ => v.clone(),
    })
}

/// Visits every node with its path (indices erased to `Idx`).
fn walk(v: &Value, at: &mut Vec<Step>, f: &mut dyn FnMut(&[Step], &Value)) {
    f(at, v);
    let kids: Vec<(Step, &Value)> = match v {
        Value::Object(m) => m.iter().map(|(k, c)| (Step::Key(k.clone()), c)).collect(),
        Value::Array(a) => a.iter().map(|c| (Step::Idx, c)).collect(),
        _ => vec![],
    };
    for (s, c) in kids {
        at.push(s);
        walk(c, at, f);
        at.pop();
    }
}

fn run(doc: &Value, mode: ListMode, paths: &[(String, Vec<Pat>)], pretty: bool) -> Value {
    let fps = paths.iter().map(|(t, _)| FieldPath::parse(t).unwrap()).collect();
    let rules = FieldRules::new(mode, fps);
    let text = if pretty {
        serde_json::to_string_pretty(doc).unwrap()
    } else {
        serde_json::to_string(doc).unwrap()
    };
    let mut out = Vec::new();
    filter(text.as_bytes(), &rules, true, &mut out).unwrap();
    serde_json::from_slice(&out).expect("output must parse")
}

/// Top-most nodes sitting exactly at a listed path: (erased path, value), in document order.
fn listed_nodes(v: &Value, pats: &[Vec<Pat>]) -> Vec<(Vec<Step>, Value)> {
    let mut found = Vec::new();
    walk(v, &mut Vec::new(), &mut |at, n| {
        let under = (0..at.len()).any(|l| covered(pats, at.get(..l).unwrap()));
        if covered(pats, at) && !under {
            found.push((at.to_vec(), n.clone()));
        }
    });
    found
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn deny_mode(doc in json(), paths in prop::collection::vec(path(), 0..4), pretty in any::<bool>()) {
        let pats: Vec<Vec<Pat>> = paths.iter().map(|p| p.1.clone()).collect();
        let out = run(&doc, ListMode::Deny, &paths, pretty);
        walk(&out, &mut Vec::new(), &mut |at, _| {
            assert!(!denied(&pats, at), "denied path {at:?} present");
        });
        prop_assert_eq!(Some(out), model(&doc, &mut Vec::new(), false, &pats));
    }

    #[test]
    fn allow_mode(doc in json(), paths in prop::collection::vec(path(), 0..4), pretty in any::<bool>()) {
        let pats: Vec<Vec<Pat>> = paths.iter().map(|p| p.1.clone()).collect();
        let out = run(&doc, ListMode::Allow, &paths, pretty);
        walk(&out, &mut Vec::new(), &mut |at, n| {
            let leaf = match n {
                Value::Object(m) => m.is_empty(),
                Value::Array(a) => a.is_empty(),
                _ => true,
            };
            let scalar = !n.is_object() && !n.is_array();
            if leaf && !at.is_empty() {
                let ok = covered(&pats, at)
                    || (!scalar && on_way(&pats, at, |_| true));
                assert!(ok, "leaf at {at:?} not covered by an allowed path");
            }
        });
        prop_assert_eq!(listed_nodes(&out, &pats), listed_nodes(&doc, &pats));
        prop_assert_eq!(Some(out), model(&doc, &mut Vec::new(), true, &pats));
    }

    #[test]
    fn deny_nothing_is_identity(doc in json(), pretty in any::<bool>()) {
        prop_assert_eq!(run(&doc, ListMode::Deny, &[], pretty), doc);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let rules = FieldRules::new(ListMode::Allow, vec![FieldPath::parse("a[].b").unwrap()]);
        let mut out = Vec::new();
        if filter(&bytes, &rules, true, &mut out).is_ok() {
            serde_json::from_slice::<Value>(&out).expect("accepted input yields valid JSON");
        }
    }

    #[test]
    fn mutated_json_never_panics(doc in json(), cuts in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut bytes = serde_json::to_vec(&doc).unwrap();
        for (at, b) in cuts {
            let i = at.index(bytes.len() + 1);
            bytes.insert(i, b);
        }
        let mut out = Vec::new();
        for mode in [ListMode::Allow, ListMode::Deny] {
            let rules = FieldRules::new(mode, vec![FieldPath::parse("*.email").unwrap()]);
            if filter(&bytes, &rules, true, &mut out).is_ok() {
                serde_json::from_slice::<Value>(&out).expect("accepted input yields valid JSON");
            }
        }
    }

    #[test]
    fn field_path_parse_never_panics(s in ".{0,20}") {
        let _ = FieldPath::parse(&s);
    }
}

/// Documents whose keys are arbitrary strings: empty, dots, quotes, non-ASCII; no control
/// characters (a key holding one is malformed, checked in `proptests_adversarial`).
fn json_any_keys() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        3 => "[a-c]{1,2}",
        1 => "\\PC{0,4}",
        1 => prop::collection::vec(any::<char>(), 0..4)
            .prop_map(|cs| cs.into_iter().filter(|c| !c.is_control()).collect()),
        1 => prop::sample::select(vec!["", ".", "[]", "a b", "a/b", "\"\\", "é", "😀"])
            .prop_map(str::to_owned),
    ];
    let leaf = prop_oneof![Just(Value::Null), any::<i64>().prop_map(Value::from)];
    leaf.prop_recursive(5, 48, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Compact JSON text; with `escape`, every char of every key is written as `\uXXXX`.
fn write_json(v: &Value, escape: bool, out: &mut String) {
    match v {
        Value::Object(m) => {
            out.push('{');
            for (i, (k, c)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if escape {
                    out.push('"');
                    for u in k.encode_utf16() {
                        out.push_str(&format!("\\u{u:04x}"));
                    }
                    out.push('"');
                } else {
                    out.push_str(&serde_json::to_string(k).unwrap());
                }
                out.push(':');
                write_json(c, escape, out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, c) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(c, escape, out);
            }
            out.push(']');
        }
        _ => out.push_str(&serde_json::to_string(v).unwrap()),
    }
}

/// Reference for `fields`: every key path, joined as documented, in document order.
fn key_paths(v: &Value, at: &str, out: &mut Vec<String>) {
    let join = |k: &str| {
        if at.is_empty() {
            k.to_owned()
        } else {
            format!("{at}.{k}")
        }
    };
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                let p = join(k);
                out.push(p.clone());
                key_paths(c, &p, out);
            }
        }
        Value::Array(a) => {
            for c in a {
                key_paths(c, &format!("{at}[]"), out);
            }
        }
        _ => {}
    }
}

/// The log form of a name: controls as '?', cut to at most 64 bytes on a char boundary.
fn log_form(p: &str) -> String {
    let s: String = p.chars().map(|c| if c.is_control() { '?' } else { c }).collect();
    let cut = (0..=64.min(s.len())).rev().find(|&i| s.is_char_boundary(i)).unwrap();
    s[..cut].to_owned()
}

fn expected_fields(doc: &Value) -> Vec<String> {
    let mut all = Vec::new();
    key_paths(doc, "", &mut all);
    let mut want: Vec<String> = Vec::new();
    for n in all.iter().map(|p| log_form(p)) {
        if !want.contains(&n) {
            want.push(n);
        }
    }
    want.truncate(128);
    want
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn fields_match_reference(
        doc in json_any_keys(),
        escape in any::<bool>(),
        mode in prop_oneof![Just(ListMode::Allow), Just(ListMode::Deny)],
        paths in prop::collection::vec(path(), 0..3),
    ) {
        let mut text = String::new();
        write_json(&doc, escape, &mut text);
        let fps = paths.iter().map(|(t, _)| FieldPath::parse(t).unwrap()).collect();
        let rules = FieldRules::new(mode, fps);
        let (mut out, mut plain_out) = (Vec::new(), Vec::new());
        let got = filter_collect(text.as_bytes(), &rules, true, &mut out).unwrap();
        let plain = filter(text.as_bytes(), &rules, true, &mut plain_out).unwrap();
        prop_assert_eq!(&got.fields, &expected_fields(&doc));
        // Collecting changes nothing else; not collecting leaves `fields` empty.
        prop_assert_eq!(out, plain_out);
        prop_assert_eq!(got.removed, plain.removed);
        prop_assert_eq!(got.card_found, plain.card_found);
        prop_assert!(plain.fields.is_empty());
    }
}
