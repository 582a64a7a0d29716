//! The checks on what a parser read: no field the policy removes (names read the way a
//! lenient binder reads them), no card number, and nothing the filter did not see.

use serde_json::{json, Value};

/// A name the way a lenient binder reads it: cut at NUL, controls dropped, fullwidth
/// read as ASCII, lower-cased, and the letters that lower-case onto ASCII ones.
pub fn binder_form(k: &str) -> String {
    let k = k.split('\0').next().unwrap_or("");
    let wide = |c: char| match c as u32 {
        0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap(),
        _ => c,
    };
    let s: String = k.chars().filter(|c| !c.is_control()).map(wide).collect();
    s.to_lowercase()
        .replace('\u{17F}', "s")
        .replace('\u{131}', "i")
        .replace("i\u{307}", "i")
}

#[derive(Debug, Clone, PartialEq)]
pub enum Seg {
    Key(String),
    Any,
    Each,
}

pub fn pattern(path: &str, fold: bool) -> Vec<Seg> {
    let mut segs = Vec::new();
    for part in path.split('.') {
        let name = part.trim_end_matches("[]");
        segs.push(match name {
            "*" => Seg::Any,
            n if fold => Seg::Key(binder_form(n)),
            n => Seg::Key(n.to_owned()),
        });
        segs.extend(std::iter::repeat_n(Seg::Each, (part.len() - name.len()) / 2));
    }
    segs
}

fn seg_matches(p: &Seg, s: &Seg) -> bool {
    match (p, s) {
        (Seg::Any, Seg::Key(_)) => true,
        _ => p == s,
    }
}

pub fn under(p: &[Seg], at: &[Seg]) -> bool {
    p.len() <= at.len() && p.iter().zip(at).all(|(p, s)| seg_matches(p, s))
}

/// `under` as an upstream that walks objects and arrays alike reads a deny list:
/// `[]` is every member of an object too, `*` every element of an array.
pub fn under_any_container(p: &[Seg], at: &[Seg]) -> bool {
    p.len() <= at.len()
        && p.iter()
            .zip(at)
            .all(|(p, s)| seg_matches(p, s) || matches!((p, s), (Seg::Each, Seg::Key(_)) | (Seg::Any, Seg::Each)))
}

/// What a parser's node path says, keys folded the binder's way (deny) or kept (allow).
pub fn segs(path: &Value, fold: bool) -> Vec<Seg> {
    path.as_array()
        .unwrap()
        .iter()
        .map(|s| match s {
            Value::Number(_) => Seg::Each,
            Value::String(k) if fold => Seg::Key(binder_form(k)),
            Value::String(k) => Seg::Key(k.clone()),
            _ => panic!("bad path segment {s}"),
        })
        .collect()
}

/// Card check written apart from the proxy's: every run of whole digit groups (ASCII,
/// fullwidth, Arabic-Indic), neighbours split by one ' ', '-' or '.', 13 to 19 digits, Luhn.
pub fn reference_card(text: &str) -> bool {
    let value = |c: char| match c as u32 {
        0x30..=0x39 => Some(c as u8 - b'0'),
        0xFF10..=0xFF19 => Some((c as u32 - 0xFF10) as u8),
        0x660..=0x669 => Some((c as u32 - 0x660) as u8),
        _ => None,
    };
    let chars: Vec<char> = text.chars().collect();
    let mut groups: Vec<(Vec<u8>, bool)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let start = i;
        let mut g = Vec::new();
        while let Some(d) = chars.get(i).and_then(|&c| value(c)) {
            g.push(d);
            i += 1;
        }
        if g.is_empty() {
            i += 1;
            continue;
        }
        let joined = start >= 2 && matches!(chars[start - 1], ' ' | '-' | '.') && value(chars[start - 2]).is_some();
        groups.push((g, joined));
    }
    (0..groups.len()).any(|a| {
        let mut all = Vec::new();
        groups.iter().enumerate().skip(a).any(|(b, (g, joined))| {
            if (b > a && !joined) || g.len() > 19 || all.len() > 19 {
                all.push(99);
                return false;
            }
            all.extend_from_slice(g);
            (13..=19).contains(&all.len()) && all.iter().all(|&d| d < 10) && luhn(&all)
        })
    })
}

fn luhn(d: &[u8]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            let x = u32::from(x) * if i % 2 == 1 { 2 } else { 1 };
            if x > 9 {
                x - 9
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Flattens a serde_json value the way the scripts do: [path, kind, text] per node.
pub fn flatten(v: &Value, path: &mut Vec<Value>, out: &mut Vec<(Vec<Value>, &'static str, String)>) {
    let (kind, text) = match v {
        Value::Object(_) => ("obj", String::new()),
        Value::Array(_) => ("arr", String::new()),
        Value::String(s) => ("str", s.clone()),
        Value::Number(n) => ("num", n.to_string()),
        Value::Bool(b) => ("bool", b.to_string()),
        Value::Null => ("null", String::new()),
    };
    out.push((path.clone(), kind, text));
    match v {
        Value::Object(m) => m.iter().for_each(|(k, c)| {
            path.push(json!(k));
            flatten(c, path, out);
            path.pop();
        }),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, c)| {
            path.push(json!(i));
            flatten(c, path, out);
            path.pop();
        }),
        _ => {}
    }
}

fn number(text: &str) -> f64 {
    match text.trim_start_matches('-').to_ascii_lowercase().as_str() {
        "inf" | "infinity" => f64::INFINITY.copysign(if text.starts_with('-') { -1.0 } else { 1.0 }),
        "nan" => f64::NAN,
        _ => text.parse().unwrap_or_else(|_| panic!("number text {text}")),
    }
}

/// Every problem one parser's reading of one forwarded body shows.
pub fn violations(parsed: &[Value], filter_view: &[(Vec<Value>, &'static str, String)], deny: bool) -> Vec<String> {
    let pats: Vec<Vec<Seg>> = if deny { DENY } else { ALLOW }
        .iter()
        .map(|p| pattern(p, deny))
        .collect();
    let mut bad = Vec::new();
    let mut seen = Vec::new();
    for node in parsed {
        let (path, kind, text) = (&node[0], node[1].as_str().unwrap(), node[2].as_str().unwrap());
        let at = segs(path, deny);
        if deny && pats.iter().any(|p| under_any_container(p, &at)) {
            bad.push(format!("denied field {path} visible"));
        }
        if !deny && !at.is_empty() && !pats.iter().any(|p| under(p, &at) || under(&at, p)) {
            bad.push(format!("field {path} outside the allow list visible"));
        }
        let key_card = path
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k.as_str().is_some_and(reference_card));
        if key_card || (matches!(kind, "str" | "num") && reference_card(text)) {
            bad.push(format!("card number visible at {path}"));
        }
        let path_vec = path.as_array().unwrap().clone();
        match filter_view.iter().find(|(p, _, _)| *p == path_vec) {
            None => bad.push(format!("{path} not in what the filter saw")),
            Some((_, k, t)) if *k != kind => bad.push(format!("{path}: filter saw a {k}, parser a {kind}")),
            Some((_, _, t)) if kind == "str" && t != text => bad.push(format!("{path}: string differs")),
            Some((_, _, t)) if kind == "num" && number(t) != number(text) && !number(t).is_nan() => {
                bad.push(format!("{path}: number {t} read as {text}"))
            }
            Some(_) => seen.push(path_vec),
        }
    }
    if seen.len() != filter_view.len() && bad.is_empty() {
        bad.push(format!(
            "parser saw {} of the {} nodes the filter saw",
            seen.len(),
            filter_view.len()
        ));
    }
    bad
}

/// The policy lists both differentials (JSON and forms) run under: the
/// proxy filters by them, and the checks read the parsers' output by them.
pub const DENY: &[&str] = &[
    "customer_note",
    "customer_ip_address",
    "billing.email",
    "billing.phone",
    "shipping.phone",
    "*.email",
    "line_items[].meta_data[].value",
];
pub const ALLOW: &[&str] = &[
    "order_id",
    "status",
    "shipping.postcode",
    "shipping.country",
    "line_items[].sku",
    "line_items[].quantity",
    "line_items[].meta_data[].key",
];
