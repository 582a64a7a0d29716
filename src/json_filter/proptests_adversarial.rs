//! Invariant 4 as a property: over documents whose keys are spelled adversarially (case
//! variants, lookalikes, `\u` escapes, surrogate pairs, duplicates, controls, deep nesting),
//! whatever the filter forwards parses as JSON and holds no field the policy removes, read
//! the way a case-insensitive binder reads names; and a card it lets through is flagged.

use super::{filter, BodyError, FieldPath, FieldRules, ListMode};
use proptest::prelude::*;
use serde_json::Value;

const BASES: &[&str] = &["email", "customer_note", "kind", "ip", "items", "a"];

/// Values that are cards by definition, in the notations the scan must see (JSON text).
const CARDS: &[&str] = &[
    r#""4111111111111111""#,
    r#""Karte: 4111 1111 1111 1111, danke""#,
    r#""4111.1111.1111.1111""#,
    r#""\u0034111-1111-1111-1111""#,
    "4111111111111111",
    "4.111111111111111e15",
    "4111111111111111.0",
    r#""\uff14111111111111111""#,
];

#[derive(Debug, Clone)]
enum Node {
    Obj(Vec<(String, Escape, Node)>),
    Arr(Vec<Node>),
    /// JSON text of a scalar.
    Leaf(&'static str),
}

/// How a key is written: as is, every char `\u`-escaped, or every other char.
#[derive(Debug, Clone, Copy)]
enum Escape {
    Raw,
    All,
    Alternate,
}

/// A base name as an attacker might spell it.
fn spelling() -> impl Strategy<Value = String> {
    (prop::sample::select(BASES), 0..8u8, any::<prop::sample::Index>()).prop_map(|(b, how, at)| {
        let at = at.index(b.len());
        let swap = |from: char, to: &str| b.replacen(from, to, 1);
        match how {
            0 => b.to_owned(),
            1 => b.to_ascii_uppercase(),
            2 => b
                .char_indices()
                .map(|(i, c)| if i == at { c.to_ascii_uppercase() } else { c })
                .collect(),
            3 => swap('k', "\u{212A}"),
            4 => swap('s', "\u{17F}"),
            5 => swap('i', if at % 2 == 0 { "\u{131}" } else { "\u{130}" }),
            6 => b
                .chars()
                .map(|c| char::from_u32(u32::from(c) + 0xFEE0).unwrap_or(c))
                .collect(),
            _ => format!("{b}{}", ["2", "_", "😀", "é"][at % 4]),
        }
    })
}

fn escape() -> impl Strategy<Value = Escape> {
    prop_oneof![Just(Escape::Raw), Just(Escape::All), Just(Escape::Alternate)]
}

fn doc() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        4 => prop::sample::select(vec!["1", "\"x\"", "null", "true", "1e400", "-0.0E-0", "123456789012345678901234567890"]),
        1 => prop::sample::select(CARDS),
    ]
    .prop_map(Node::Leaf);
    leaf.prop_recursive(6, 64, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Node::Arr),
            prop::collection::vec((spelling(), escape(), inner), 0..5).prop_map(Node::Obj),
        ]
    })
}

fn write(n: &Node, out: &mut String) {
    match n {
        Node::Leaf(t) => out.push_str(t),
        Node::Arr(a) => {
            out.push('[');
            for (i, c) in a.iter().enumerate() {
                out.push_str(if i > 0 { "," } else { "" });
                write(c, out);
            }
            out.push(']');
        }
        Node::Obj(m) => {
            out.push('{');
            for (i, (k, e, c)) in m.iter().enumerate() {
                out.push_str(if i > 0 { "," } else { "" });
                write_key(k, *e, out);
                out.push(':');
                write(c, out);
            }
            out.push('}');
        }
    }
}

fn write_key(k: &str, e: Escape, out: &mut String) {
    out.push('"');
    for (i, c) in k.chars().enumerate() {
        let esc = match e {
            Escape::Raw => false,
            Escape::All => true,
            Escape::Alternate => i % 2 == 0,
        };
        if esc {
            for u in c.encode_utf16(&mut [0; 2]) {
                // Upper-case hex on odd positions: both spellings are valid JSON.
                out.push_str(&if i % 2 == 1 {
                    format!("\\u{u:04X}")
                } else {
                    format!("\\u{u:04x}")
                });
            }
        } else {
            out.push(c);
        }
    }
    out.push('"');
}

/// Nesting of objects and arrays.
fn depth(n: &Node) -> usize {
    match n {
        Node::Leaf(_) => 0,
        Node::Arr(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Node::Obj(m) => 1 + m.iter().map(|(_, _, c)| depth(c)).max().unwrap_or(0),
    }
}

/// Exact keys repeated in one object: the input is then a duplicate-key body.
fn has_duplicate(n: &Node) -> bool {
    match n {
        Node::Leaf(_) => false,
        Node::Arr(a) => a.iter().any(has_duplicate),
        Node::Obj(m) => {
            let dup = m
                .iter()
                .enumerate()
                .any(|(i, (k, _, _))| m.iter().skip(i + 1).any(|(k2, _, _)| k == k2));
            dup || m.iter().any(|(_, _, c)| has_duplicate(c))
        }
    }
}

/// A name as a lenient binder reads it, written independently of `fold`: NFKC's fullwidth
/// mapping, Unicode lower case, then the letters that lower-case outside ASCII.
fn binder_form(k: &str) -> String {
    let wide = |c: char| match u32::from(c) {
        0xFF01..=0xFF5E => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
        _ => c,
    };
    let lower: String = k.chars().map(wide).collect::<String>().to_lowercase();
    lower
        .replace('\u{17F}', "s")
        .replace('\u{131}', "i")
        .replace("i\u{307}", "i")
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Each,
}

/// Policy paths over the bases, written in any case (a deny list is case-blind both ways).
fn paths() -> impl Strategy<Value = Vec<(String, Vec<Seg>)>> {
    let seg = (prop::sample::select(BASES), any::<bool>(), any::<bool>());
    let path = prop::collection::vec(seg, 1..3).prop_map(|segs| {
        let mut text = String::new();
        let mut pat = Vec::new();
        for (i, (b, upper, each)) in segs.into_iter().enumerate() {
            text.push_str(if i > 0 { "." } else { "" });
            let name = if upper { b.to_ascii_uppercase() } else { b.to_owned() };
            text.push_str(&name);
            pat.push(Seg::Key(name));
            if each {
                text.push_str("[]");
                pat.push(Seg::Each);
            }
        }
        (text, pat)
    });
    prop::collection::vec(path, 1..4)
}

/// Every node's path in `v`, names as the binder reads them (deny) or exactly (allow).
fn walk(v: &Value, at: &mut Vec<Seg>, fold: bool, f: &mut dyn FnMut(&[Seg])) {
    f(at);
    match v {
        Value::Object(m) => m.iter().for_each(|(k, c)| {
            at.push(Seg::Key(if fold { binder_form(k) } else { k.clone() }));
            walk(c, at, fold, f);
            at.pop();
        }),
        Value::Array(a) => a.iter().for_each(|c| {
            at.push(Seg::Each);
            walk(c, at, fold, f);
            at.pop();
        }),
        _ => {}
    }
}

fn prefix_of(p: &[Seg], at: &[Seg]) -> bool {
    p.len() <= at.len() && p.iter().zip(at).all(|(p, a)| p == a)
}

/// The JSON text of every scalar left in the output.
fn texts(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => m.values().for_each(|c| texts(c, out)),
        Value::Array(a) => a.iter().for_each(|c| texts(c, out)),
        _ => out.push(v.to_string()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn forwarded_json_never_holds_a_removed_field(
        d in doc(),
        deny in any::<bool>(),
        paths in paths(),
        wrap in prop_oneof![6 => Just(0usize), 1 => 60usize..70],
        control in prop::option::weighted(0.1, prop::sample::select(vec!["\\u0000", "\\u001f", "\\u007F", "\u{85}"])),
    ) {
        let mode = if deny { ListMode::Deny } else { ListMode::Allow };
        let fps = paths.iter().map(|(t, _)| FieldPath::parse(t).unwrap()).collect();
        let rules = FieldRules::new(mode, fps);
        let mut text = String::new();
        write(&d, &mut text);
        let mut extra_level = 0;
        if let Some(c) = control {
            // One key of the document gains a control character, wherever it is.
            if let Some(i) = text.find("\":") {
                text.insert_str(i, c);
            } else {
                text = format!("{{\"customer_note{c}\":{text}}}");
                extra_level = 1;
            }
        }
        let text = format!("{}{text}{}", "[".repeat(wrap), "]".repeat(wrap));
        let mut out = Vec::new();
        let got = filter(text.as_bytes(), &rules, true, &mut out);
        // Which refusals the body deserves; with several, the first met in the text wins.
        let mut deserved = Vec::new();
        if control.is_some() {
            deserved.push(BodyError::Malformed);
        }
        if has_duplicate(&d) {
            deserved.push(BodyError::DuplicateKey);
        }
        if wrap + depth(&d) + extra_level > super::MAX_DEPTH {
            deserved.push(BodyError::TooDeep);
        }
        let outcome = match got {
            Err(e) => {
                prop_assert!(out.is_empty(), "nothing forwarded on error");
                prop_assert!(deserved.contains(&e), "{:?} for {}", e, text);
                return Ok(());
            }
            Ok(o) => o,
        };
        prop_assert!(deserved.is_empty(), "accepted {}", text);
        let v: Value = serde_json::from_slice(&out).expect("forwarded body parses as JSON");
        // Deny names are read the binder's way on both sides; allow names exactly.
        let pats: Vec<Vec<Seg>> = paths
            .iter()
            .map(|(_, p)| p.iter().map(|s| match s {
                Seg::Key(k) if deny => Seg::Key(binder_form(k)),
                other => other.clone(),
            }).collect())
            .collect();
        walk(&v, &mut Vec::new(), deny, &mut |at| {
            if deny {
                assert!(!pats.iter().any(|p| prefix_of(p, at)), "denied {at:?} forwarded: {}", String::from_utf8_lossy(&out));
            } else if !at.is_empty() {
                let kept = pats.iter().any(|p| prefix_of(p, at) || prefix_of(at, p));
                assert!(kept, "{at:?} not allowed but forwarded");
            }
        });
        let mut left = Vec::new();
        texts(&v, &mut left);
        let card_left = CARDS.iter().any(|c| {
            let decoded: Value = serde_json::from_str(c).unwrap();
            left.contains(&decoded.to_string())
        });
        prop_assert!(!card_left || outcome.card_found, "card forwarded unflagged: {}", String::from_utf8_lossy(&out));
    }
}
