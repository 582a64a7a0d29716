//! Mutated form bodies, from a fixed seed: a WooCommerce order as PHP's `http_build_query`
//! writes it, then denied names respelled (case, lookalikes, `.`, spaces, NUL, percent
//! escapes), brackets encoded, unbalanced or nested deep, indexes respelled, pairs
//! duplicated or turned into containers, card numbers, bad escapes and raw separators.

pub use super::doc::Rng;

pub struct Case {
    pub label: String,
    pub ct: String,
    pub body: Vec<u8>,
    pub deny: bool,
}

/// The order, one (name segments, value) per pair, in http_build_query's order.
const ORDER: &[(&[&str], &str)] = &[
    (&["order_id"], "1042"),
    (&["status"], "processing"),
    (&["customer_note"], "Bitte klingeln"),
    (&["customer_ip_address"], "203.0.113.9"),
    (&["billing", "first_name"], "Erika"),
    (&["billing", "email"], "erika@example.org"),
    (&["billing", "phone"], "+49 221 1234567"),
    (&["billing", "city"], "Koeln"),
    (&["shipping", "first_name"], "Max"),
    (&["shipping", "postcode"], "53111"),
    (&["shipping", "country"], "DE"),
    (&["shipping", "phone"], "+49 228 7654321"),
    (&["shipping", "email"], "max@example.org"),
    (&["line_items", "0", "sku"], "MUG-RED"),
    (&["line_items", "0", "quantity"], "2"),
    (&["line_items", "0", "price"], "9.90"),
    (&["line_items", "0", "meta_data", "0", "key"], "gift"),
    (&["line_items", "0", "meta_data", "0", "value"], "Fuer Max"),
    (&["line_items", "1", "sku"], "TEE-M"),
    (&["line_items", "1", "quantity"], "1"),
];

const DENIED: &[&str] = &["customer_note", "customer_ip_address", "email", "phone", "value"];

const CARDS: &[&str] = &[
    "4111111111111111",
    "4111 1111 1111 1111",
    "Karte: 4111-1111-1111-1111, danke",
    "4111.1111.1111.1111",
    "378282246310005",
];

/// PHP's urlencode: letters, digits and `-_.` kept, space as `+`, the rest `%XX`.
fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A name as a hostile client might spell it for PHP to bind it to `name`.
fn respell(name: &str, rng: &mut Rng) -> (String, &'static str) {
    let swap = |from: char, to: &str| name.replacen(from, to, 1);
    match rng.below(12) {
        0 => (name.to_ascii_uppercase(), "upper"),
        1 => (swap('_', "."), "dot for underscore"),
        2 => (swap('_', " "), "space for underscore"),
        3 => (format!(" {name}"), "leading space"),
        4 => (format!("{name}\0x"), "nul"),
        5 => (swap('s', "\u{17F}"), "long s"),
        6 => (swap('e', "\u{FF45}"), "fullwidth"),
        7 => (swap('i', "\u{131}"), "dotless i"),
        8 => (format!("{name}]"), "stray close"),
        9 => (format!("{name}["), "stray open"),
        10 => (swap('_', "["), "open for underscore"),
        _ => (name.to_owned(), "plain"),
    }
}

struct Pair {
    segs: Vec<String>,
    value: String,
}

/// The name as written: base, then `[seg]`, brackets raw or encoded; the segments
/// percent-encoded the way PHP writes them, or left raw.
fn write_name(segs: &[String], enc_brackets: bool, encode: bool) -> String {
    let (open, close) = if enc_brackets { ("%5B", "%5D") } else { ("[", "]") };
    let enc = |s: &str| if encode { urlencode(s) } else { s.to_owned() };
    let mut out = enc(&segs[0]);
    for s in &segs[1..] {
        out.push_str(open);
        out.push_str(&enc(s));
        out.push_str(close);
    }
    out
}

pub fn case(rng: &mut Rng, deny: bool) -> Case {
    let mut pairs: Vec<Pair> = ORDER
        .iter()
        .map(|(segs, v)| Pair {
            segs: segs.iter().map(|s| (*s).to_owned()).collect(),
            value: (*v).to_owned(),
        })
        .collect();
    let mut labels = Vec::new();
    for _ in 0..1 + rng.below(3) {
        labels.push(mutate(&mut pairs, rng));
    }
    let enc_brackets = rng.chance(50);
    let encode = rng.chance(80);
    let mut parts: Vec<String> = pairs
        .iter()
        .map(|p| format!("{}={}", write_name(&p.segs, enc_brackets, encode), urlencode(&p.value)))
        .collect();
    if rng.chance(15) {
        labels.push(bytes_mutation(&mut parts, rng).to_owned());
    }
    let ct = match rng.below(10) {
        0 => "application/x-www-form-urlencoded; charset=utf-8",
        1 => "application/x-www-form-urlencoded; charset=iso-8859-1",
        _ => "application/x-www-form-urlencoded",
    };
    Case {
        label: labels.join(" + "),
        ct: ct.to_owned(),
        body: parts.join("&").into_bytes(),
        deny,
    }
}

fn mutate(pairs: &mut Vec<Pair>, rng: &mut Rng) -> String {
    let i = rng.below(pairs.len());
    match rng.below(12) {
        0..=2 => {
            // Respell a denied key wherever it sits.
            let Some(p) = pairs
                .iter_mut()
                .find(|p| p.segs.iter().any(|s| DENIED.contains(&s.as_str())))
            else {
                return "none".to_owned();
            };
            let at = p.segs.iter().position(|s| DENIED.contains(&s.as_str())).unwrap();
            let (spelled, how) = respell(&p.segs[at], rng);
            p.segs[at] = spelled;
            format!("respell {how}")
        }
        3 => {
            let p = &mut pairs[i];
            if let Some(n) = p.segs.iter_mut().skip(1).find(|s| s.parse::<u32>().is_ok()) {
                *n = rng.pick(&["", "00", "x", " 0", "-1", "999999999999"]).to_string();
            }
            "index respelled".to_owned()
        }
        4 => {
            let dup = Pair {
                segs: pairs[i].segs.clone(),
                value: rng.pick(&["other", "4111111111111111", ""]).to_string(),
            };
            pairs.push(dup);
            "duplicate".to_owned()
        }
        5 => {
            let base = pairs[i].segs[0].clone();
            pairs.insert(
                rng.below(pairs.len()),
                Pair {
                    segs: vec![base],
                    value: "x".to_owned(),
                },
            );
            "scalar and container".to_owned()
        }
        6 => {
            let extra = 1 + rng.below(5);
            for k in 0..extra {
                pairs[i].segs.insert(1, format!("n{k}"));
            }
            format!("nested +{extra}")
        }
        7 => {
            pairs[i].value = rng.pick(CARDS).to_string();
            "card value".to_owned()
        }
        8..=10 => {
            let j = rng.below(pairs.len());
            pairs.swap(i, j);
            "swap".to_owned()
        }
        _ => {
            pairs.push(Pair {
                segs: vec![
                    rng.pick(&["customer_note", "metadata", "x"]).to_string(),
                    rng.pick(CARDS).to_string(),
                ],
                value: "1".to_owned(),
            });
            "card name".to_owned()
        }
    }
}

fn bytes_mutation(parts: &mut [String], rng: &mut Rng) -> &'static str {
    let i = rng.below(parts.len());
    let p = &mut parts[i];
    match rng.below(6) {
        0 => {
            p.push_str("%zz");
            "bad escape"
        }
        1 => {
            p.push_str("%E9");
            "latin-1 escape"
        }
        2 => {
            p.push_str(";customer_note=x");
            "semicolon"
        }
        3 => {
            p.insert_str(0, "&&");
            "empty pairs"
        }
        4 => {
            *p = p.replacen('=', "%3D", 1);
            "encoded equals"
        }
        _ => {
            *p = p.replacen("customer", "%63ustomer", 1);
            "escaped letter"
        }
    }
}
