//! The generator's building blocks: a fixed-seed random source, and a JSON document that
//! can hold duplicate keys and chosen `\u` escapes, written out as text.

use serde_json::Value;

/// SplitMix64: small, fixed-seed, good enough to pick mutations.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// How a key is written in the JSON text.
#[derive(Clone, Copy, PartialEq)]
pub enum Esc {
    Raw,
    All,
    Some,
}

/// A JSON document that can hold what `serde_json::Value` cannot: duplicate keys, chosen
/// key escapes, and scalars kept as their exact text.
#[derive(Clone)]
pub enum Doc {
    Obj(Vec<(String, Esc, Doc)>),
    Arr(Vec<Doc>),
    Leaf(String),
}

impl Doc {
    pub fn from_value(v: &Value) -> Doc {
        match v {
            Value::Object(m) => Doc::Obj(
                m.iter()
                    .map(|(k, c)| (k.clone(), Esc::Raw, Doc::from_value(c)))
                    .collect(),
            ),
            Value::Array(a) => Doc::Arr(a.iter().map(Doc::from_value).collect()),
            _ => Doc::Leaf(v.to_string()),
        }
    }

    pub fn write(&self, pretty: bool, out: &mut String) {
        let (sep, colon) = if pretty { (",\n ", ": ") } else { (",", ":") };
        match self {
            Doc::Leaf(t) => out.push_str(t),
            Doc::Arr(a) => {
                out.push('[');
                for (i, c) in a.iter().enumerate() {
                    out.push_str(if i > 0 { sep } else { "" });
                    c.write(pretty, out);
                }
                out.push(']');
            }
            Doc::Obj(m) => {
                out.push('{');
                for (i, (k, e, c)) in m.iter().enumerate() {
                    out.push_str(if i > 0 { sep } else { "" });
                    write_key(k, *e, out);
                    out.push_str(colon);
                    c.write(pretty, out);
                }
                out.push('}');
            }
        }
    }

    /// Objects in the document, in pre-order.
    pub fn count_objects(&self) -> usize {
        match self {
            Doc::Leaf(_) => 0,
            Doc::Arr(a) => a.iter().map(Doc::count_objects).sum(),
            Doc::Obj(m) => 1 + m.iter().map(|(_, _, c)| c.count_objects()).sum::<usize>(),
        }
    }

    /// The `n`-th object in pre-order.
    pub fn nth_object(&mut self, n: &mut usize) -> Option<&mut Vec<Member>> {
        match self {
            Doc::Leaf(_) => None,
            Doc::Arr(a) => a.iter_mut().find_map(|c| c.nth_object(n)),
            Doc::Obj(m) => {
                if *n == 0 {
                    return Some(m);
                }
                *n -= 1;
                m.iter_mut().find_map(|(_, _, c)| c.nth_object(n))
            }
        }
    }

    /// The object at `path` (exact keys), if there is one.
    pub fn object_at(&mut self, path: &[&str]) -> Option<&mut Vec<Member>> {
        let Doc::Obj(m) = self else { return None };
        match path.split_first() {
            None => Some(m),
            Some((first, rest)) => m.iter_mut().find(|(k, _, _)| k == first)?.2.object_at(rest),
        }
    }
}

pub type Member = (String, Esc, Doc);

fn write_key(k: &str, e: Esc, out: &mut String) {
    out.push('"');
    for (i, c) in k.chars().enumerate() {
        let esc = match e {
            Esc::Raw => c == '"' || c == '\\' || (c as u32) < 0x20,
            Esc::All => true,
            Esc::Some => i % 2 == 0 || c == '"' || c == '\\' || (c as u32) < 0x20,
        };
        if esc {
            for u in c.encode_utf16(&mut [0; 2]) {
                out.push_str(&if i % 3 == 0 {
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
