//! Mutations of a real WooCommerce order, from a fixed seed: denied names respelled (case,
//! lookalikes, `\u` escapes), duplicates, control characters, deep nesting, huge numbers,
//! card numbers in many notations, and at the byte level charsets, BOM, UTF-7 and UTF-16.

pub use super::doc::{Doc, Esc, Member, Rng};

/// One generated request body: what the mutations were, its `Content-Type`, its bytes.
pub struct Case {
    pub label: String,
    pub ct: Option<String>,
    pub body: Vec<u8>,
    /// Which route: the deny-list one or the allow-list one.
    pub deny: bool,
}

/// Where denied names live in an order, and the names.
const DENIED: &[(&[&str], &str)] = &[
    (&[], "customer_note"),
    (&[], "customer_ip_address"),
    (&["billing"], "email"),
    (&["billing"], "phone"),
    (&["shipping"], "phone"),
    (&["shipping"], "email"),
];

/// A name as a hostile client might spell it to slip past a deny list.
pub fn respell(name: &str, rng: &mut Rng) -> String {
    let swap = |from: char, to: &str| name.replacen(from, to, 1);
    match rng.below(10) {
        0 => name.to_ascii_uppercase(),
        1 => name
            .char_indices()
            .map(|(i, c)| {
                if i == 0 || i % 3 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect(),
        2 => swap('s', "\u{17F}"),
        3 => swap('i', "\u{131}"),
        4 => swap('i', "\u{130}"),
        5 => name
            .chars()
            .map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap_or(c))
            .collect(),
        6 => swap('e', "\u{FF25}"),
        7 => format!("{name}\u{0}"),
        _ => name.to_owned(),
    }
}

/// Card numbers as text (string content) and as JSON number text.
const CARD_TEXTS: &[&str] = &[
    "4111111111111111",
    "Karte: 4111 1111 1111 1111, danke",
    "4111.1111.1111.1111",
    "4111-1111-1111-1111 exp 12/26",
    "ref 12345 4111 1111 1111 1111",
    "\u{FF14}\u{FF11}\u{FF11}\u{FF11}111111111111",
    "378282246310005",
];
const CARD_NUMBERS: &[&str] = &[
    "4111111111111111",
    "4.111111111111111e15",
    "4111111111111111.0",
    "41111111111111110e-1",
    "-4111111111111111",
];
const HUGE: &[&str] = &[
    "1e400",
    "-1e400",
    "123456789012345678901234567890",
    "-0.0E-0",
    "1.5e-400",
    "9007199254740993",
    "0.30000000000000004",
];

fn string_leaf(s: &str, escape_digits: bool) -> Doc {
    if !escape_digits {
        return Doc::Leaf(serde_json::to_string(s).unwrap());
    }
    let mut t = String::from('"');
    for c in s.chars() {
        if c.is_ascii_digit() {
            t.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            t.push_str(serde_json::to_string(&c.to_string()).unwrap().trim_matches('"'));
        }
    }
    t.push('"');
    Doc::Leaf(t)
}

fn random_object<'a>(doc: &'a mut Doc, rng: &mut Rng) -> Option<&'a mut Vec<Member>> {
    let mut n = rng.below(doc.count_objects());
    doc.nth_object(&mut n)
}

/// Applies one named mutation to the document.
fn mutate(doc: &mut Doc, rng: &mut Rng) -> &'static str {
    match rng.below(9) {
        0 | 1 => {
            let (path, name) = *rng.pick(DENIED);
            let spelled = respell(name, rng);
            let rename = rng.chance(50);
            let Some(obj) = doc.object_at(path) else {
                return "respell(no object)";
            };
            match obj.iter_mut().find(|(k, _, _)| k == name) {
                Some(member) if rename => member.0 = spelled,
                _ => obj.push((spelled, Esc::Raw, Doc::Leaf("\"LEAK\"".into()))),
            }
            "respell denied"
        }
        2 => {
            for i in 0..doc.count_objects() {
                let esc = *rng.pick(&[Esc::Raw, Esc::All, Esc::Some]);
                if let Some(obj) = doc.nth_object(&mut { i }) {
                    let j = rng.below(obj.len());
                    if let Some(m) = obj.get_mut(j) {
                        m.1 = esc;
                    }
                }
            }
            "escape keys"
        }
        3 => {
            let Some(obj) = random_object(doc, rng) else {
                return "duplicate(none)";
            };
            if obj.is_empty() {
                return "duplicate(empty)";
            }
            let j = rng.below(obj.len());
            let mut copy = obj[j].clone();
            copy.1 = *rng.pick(&[Esc::Raw, Esc::All]);
            obj.push(copy);
            "duplicate key"
        }
        4 => {
            let Some(obj) = random_object(doc, rng) else {
                return "deep(none)";
            };
            let depth = 1 + rng.below(70);
            let mut v = Doc::Leaf("\"deep\"".into());
            for _ in 0..depth {
                v = if rng.chance(50) {
                    Doc::Arr(vec![v])
                } else {
                    Doc::Obj(vec![("n".into(), Esc::Raw, v)])
                };
            }
            obj.push(("nested".into(), Esc::Raw, v));
            "deep nesting"
        }
        5 => {
            let Some(obj) = random_object(doc, rng) else {
                return "huge(none)";
            };
            obj.push(("amount".into(), Esc::Raw, Doc::Leaf((*rng.pick(HUGE)).into())));
            "huge number"
        }
        6 => {
            let escape = rng.chance(30);
            let value = match rng.below(3) {
                0 => Doc::Leaf((*rng.pick(CARD_NUMBERS)).into()),
                _ => string_leaf(rng.pick::<&str>(CARD_TEXTS), escape),
            };
            let key = if rng.chance(15) {
                rng.pick(CARD_TEXTS).to_string()
            } else {
                "order_ref".into()
            };
            let Some(obj) = random_object(doc, rng) else {
                return "card(none)";
            };
            obj.push((key, Esc::Raw, value));
            "card"
        }
        7 => {
            let Some(obj) = random_object(doc, rng) else {
                return "control(none)";
            };
            let Some(m) = obj.first_mut() else {
                return "control(empty)";
            };
            m.0.push(*rng.pick(&['\0', '\u{1f}', '\u{7f}', '\u{85}']));
            "control in key"
        }
        8 => {
            // PHP's json_decode(.., true) and JavaScript walk {"0": ..} like [..].
            let Some(obj) = doc.object_at(&[]) else {
                return "array as object(none)";
            };
            for m in obj.iter_mut() {
                if let Doc::Arr(items) = &m.2 {
                    let members = items
                        .iter()
                        .enumerate()
                        .map(|(i, d)| (i.to_string(), Esc::Raw, d.clone()))
                        .collect();
                    m.2 = Doc::Obj(members);
                }
            }
            "array as object"
        }
        _ => {
            let Some(obj) = doc.object_at(&[]) else {
                return "proto(none)";
            };
            let inner = Doc::Obj(vec![("customer_note".into(), Esc::Raw, Doc::Leaf("\"LEAK\"".into()))]);
            obj.push(("__proto__".into(), Esc::Raw, inner));
            "__proto__"
        }
    }
}

/// Content types shops send, all of which the filter reads as UTF-8 JSON.
const GOOD_TYPES: &[&str] = &[
    "application/json",
    "application/json; charset=utf-8",
    "application/json;charset=UTF-8",
    "application/json; charset=\"utf-8\"",
    "application/json ;\tcharset=utf-8",
    "application/vnd.api+json",
];

/// Everything a charset or media-type trick could use.
const TRICKY_TYPES: &[Option<&str>] = &[
    Some("application/json; charset=utf8"),
    Some("application/json; charset=utf-16"),
    Some("application/json; charset=utf-16le"),
    Some("application/json; charset=latin1"),
    Some("application/json; charset=utf-8; charset=utf-7"),
    Some("application/json; charset = utf-7"),
    Some("application/json; x=\"; charset=utf-7\""),
    Some("application/json; x-charset=utf-7"),
    Some("application/json, text/plain"),
    Some("text/plain"),
    None,
];

/// The UTF-7 payload: as UTF-8 one string value; as UTF-7, `","customer_note":"LEAK`.
const UTF7_SMUGGLE: &str = "x+ACIALA-+ACI-customer+AF8-note+ACI-:+ACI-LEAK 4111 1111 1111 1111";

pub fn case(order: &Doc, rng: &mut Rng, deny: bool) -> Case {
    let mut doc = order.clone();
    let mut label: Vec<&str> = (0..1 + rng.below(3)).map(|_| mutate(&mut doc, rng)).collect();
    let mut text = String::new();
    doc.write(rng.chance(30), &mut text);
    let mut ct = if rng.chance(85) {
        Some((*rng.pick(GOOD_TYPES)).to_owned())
    } else {
        rng.pick(TRICKY_TYPES).map(str::to_owned)
    };
    let mut body = text.into_bytes();
    match rng.below(20) {
        0 => {
            body.splice(0..0, [0xEF, 0xBB, 0xBF]);
            label.push("bom");
        }
        1 | 2 => {
            let at = find_string_value(&body).unwrap_or(0);
            body.splice(at..at, UTF7_SMUGGLE.bytes());
            ct = Some(
                rng.pick(&[
                    "application/json; charset=utf-7",
                    "application/json; charset=\"UTF-7\"",
                    "application/json; charset = utf-7",
                ])
                .to_string(),
            );
            label.push("utf-7 smuggle");
        }
        3 => {
            let s = String::from_utf8(body).unwrap();
            body = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
            label.push("utf-16le");
        }
        4 => {
            let at = find_string_value(&body).unwrap_or(0);
            body.insert(at, 0xFF);
            label.push("invalid utf-8");
        }
        5 => {
            let s = String::from_utf8(body).unwrap().replacen("48213", "NaN", 1);
            body = s.into_bytes();
            label.push("NaN");
        }
        _ => {}
    }
    Case {
        label: label.join("+"),
        ct,
        body,
        deny,
    }
}

/// Just after the opening quote of the first string value (after a `": "` or `":"`).
fn find_string_value(body: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(body).ok()?;
    text.find(":\"")
        .map(|i| i + 2)
        .or_else(|| text.find(": \"").map(|i| i + 3))
}
