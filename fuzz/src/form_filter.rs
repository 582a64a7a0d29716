//! The form body filter as a route applies it (`egress_guard::proxy::body_policy::apply`,
//! enforce mode, `on_violation: strip`, `Content-Type: application/x-www-form-urlencoded`),
//! once with an allow list and once with a deny list.
//!
//! Properties (docs/policy.md, "Form bodies and query strings"; invariant 4), for a body the
//! filter accepts: what is forwarded is the body's own pairs, byte for byte and in order;
//! read the way PHP's `parse_str` reads names (written here apart from the proxy: NUL cuts,
//! leading spaces dropped, `.` and spaces in the base as `_`, a `[` without `]` as `_`,
//! anything after a group's `]` ignored), no forwarded pair sits at a denied path (keys
//! ASCII-case-insensitive, `[]` any member), and with the allow list every forwarded pair
//! lies inside an allowed path (keys exact).

use std::sync::OnceLock;

use egress_guard::json_filter::{FieldPath, FieldRules, ListMode as Mode};
use egress_guard::policy::{self, BodyPolicy, OnViolation};
use egress_guard::proxy::body_policy as bodypolicy;
use http::{header, HeaderMap, HeaderValue};

pub const ALLOW: &[&str] = &["amount", "currency", "metadata.order_id", "items[].sku", "meta.*"];
pub const DENY: &[&str] = &["customer_note", "billing.email", "*.phone", "items[].price", "api_key"];

pub fn check(data: &[u8]) {
    static POLICIES: OnceLock<[BodyPolicy; 2]> = OnceLock::new();
    let policies = POLICIES.get_or_init(|| [body_policy(Mode::Allow, ALLOW), body_policy(Mode::Deny, DENY)]);
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    for bp in policies {
        let Ok(outcome) = bodypolicy::apply(bp, policy::Mode::Enforce, &headers, data) else {
            continue;
        };
        let sent = outcome.replaced.as_deref().unwrap_or(data);
        check_subsequence(data, sent, bp.mode);
        for pair in sent.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let raw_name = pair.split(|&b| b == b'=').next().unwrap_or_default();
            let Some(path) = php_path(&decode(raw_name)) else {
                continue;
            };
            let ok = match bp.mode {
                Mode::Deny => !DENY.iter().any(|p| under(&pattern(p), &path, true)),
                Mode::Allow => ALLOW.iter().any(|p| under(&pattern(p), &path, false)),
            };
            assert!(
                ok,
                "form_filter ({:?}): PHP reads a forwarded pair at {path:?}",
                bp.mode
            );
        }
    }
}

fn body_policy(mode: Mode, list: &[&str]) -> BodyPolicy {
    let paths: Vec<FieldPath> = list.iter().filter_map(|p| FieldPath::parse(p).ok()).collect();
    assert_eq!(
        paths.len(),
        list.len(),
        "form_filter: a fixed field path does not parse"
    );
    BodyPolicy {
        mode,
        paths: list.iter().map(|p| (*p).to_owned()).collect(),
        rules: FieldRules::new(mode, paths),
        on_violation: OnViolation::Strip,
        scan_cards: mode == Mode::Deny,
        schema: None,
    }
}

/// Forwarded pairs are input pairs, in order, unchanged.
fn check_subsequence(input: &[u8], sent: &[u8], mode: Mode) {
    let mut pairs = input.split(|&b| b == b'&');
    for kept in sent.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        assert!(
            pairs.any(|p| p == kept),
            "form_filter ({mode:?}): forwarded a pair the body does not hold in that order"
        );
    }
}

/// Lenient form decoding, as PHP does it: a bad escape stays as written.
fn decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        let hex = |j: usize| s.get(j).and_then(|c| char::from(*c).to_digit(16));
        match (b, hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
pub enum Seg {
    Key(Vec<u8>),
    Index,
    Any,
    Each,
}

/// PHP's reading of a decoded name (php_register_variable_ex), `None` for one PHP drops.
fn php_path(name: &[u8]) -> Option<Vec<Seg>> {
    let name = name.split(|&b| b == 0).next().unwrap_or_default();
    let name: &[u8] = &name[name.iter().position(|&b| b != b' ').unwrap_or(name.len())..];
    let open = name.iter().position(|&b| b == b'[');
    let balanced = open.is_some_and(|o| name[o..].contains(&b']'));
    let base_end = if balanced {
        open.unwrap_or(name.len())
    } else {
        name.len()
    };
    let base: Vec<u8> = name[..base_end]
        .iter()
        .map(|&b| if matches!(b, b' ' | b'.' | b'[') { b'_' } else { b })
        .collect();
    if base.is_empty() {
        return None;
    }
    let mut path = vec![Seg::Key(base)];
    let mut rest = &name[base_end..];
    while let Some(r) = rest.strip_prefix(b"[") {
        let close = r.iter().position(|&b| b == b']')?;
        let index = &r[..close];
        let numeric = !index.is_empty() && index.iter().all(u8::is_ascii_digit);
        path.push(if index.is_empty() || numeric {
            Seg::Index
        } else {
            Seg::Key(index.to_vec())
        });
        rest = &r[close + 1..];
    }
    Some(path)
}

fn pattern(p: &str) -> Vec<Seg> {
    let mut segs = Vec::new();
    for part in p.split('.') {
        let name = part.trim_end_matches("[]");
        segs.push(if name == "*" {
            Seg::Any
        } else {
            Seg::Key(name.as_bytes().to_vec())
        });
        segs.extend(std::iter::repeat_n(Seg::Each, (part.len() - name.len()) / 2));
    }
    segs
}

/// Whether `at` lies at or under pattern `p`; a deny list reads names case-blind and its
/// `[]` and `*` as any member, an allow list matches exactly.
fn under(p: &[Seg], at: &[Seg], deny: bool) -> bool {
    p.len() <= at.len()
        && p.iter().zip(at).all(|(p, s)| match (p, s) {
            (Seg::Key(a), Seg::Key(b)) if deny => a.eq_ignore_ascii_case(b),
            (Seg::Key(a), Seg::Key(b)) => a == b,
            (Seg::Any, Seg::Key(_)) | (Seg::Each, Seg::Index) => true,
            (Seg::Any | Seg::Each, _) => deny,
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    /// The seeds and inputs PHP reads differently from the plain grammar pass the property.
    #[test]
    fn seeds_hold() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/form_filter");
        for entry in std::fs::read_dir(dir).unwrap() {
            super::check(&std::fs::read(entry.unwrap().path()).unwrap());
        }
        for input in [
            &b"customer.note=x"[..],
            b"customer_note%00=x",
            b"billing[email=x",
            b"%20api_key=x",
            b"BILLING[EMAIL]=x",
            b"items[0][price]=1&items[a][price]=2",
        ] {
            super::check(input);
        }
    }
}
