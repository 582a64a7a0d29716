//! How a deny list compares a body's key with a listed name: the way the most lenient
//! upstream binder would, so no spelling of a denied name can bind to it upstream. Also the
//! check that refuses control characters in keys.

/// The deny-list form of one character: ASCII letters lower-cased (Go's and ASP.NET's
/// binders ignore case); fullwidth ASCII (U+FF01..U+FF5E) read as ASCII (NFKC does so);
/// the non-ASCII letters that some binder folds onto an ASCII one: KELVIN SIGN to `k`
/// (Go's `EqualFold`, Java's `toLowerCase`), LONG S to `s` (Go, .NET), DOTLESS I and
/// I WITH DOT to `i` (.NET's `OrdinalIgnoreCase`, Java in a Turkish locale); any other
/// letter by its simple lower case.
pub(super) fn fold_char(c: char) -> char {
    match c {
        'A'..='Z' => c.to_ascii_lowercase(),
        '\0'..='\x7f' => c,
        '\u{212A}' => 'k',
        '\u{017F}' => 's',
        '\u{0130}' | '\u{0131}' => 'i',
        '\u{FF01}'..='\u{FF5E}' => {
            let ascii = char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c);
            ascii.to_ascii_lowercase()
        }
        _ => {
            let mut lower = c.to_lowercase();
            match (lower.next(), lower.next()) {
                (Some(l), None) => l,
                _ => c,
            }
        }
    }
}

/// The deny-list form of a policy name (compiled once, at policy load).
pub(super) fn fold_name(name: &[u8]) -> Box<[u8]> {
    match std::str::from_utf8(name) {
        Ok(s) => s.chars().map(fold_char).collect::<String>().into_bytes().into(),
        Err(_) => name.into(),
    }
}

/// Whether the decoded key `key` names the folded policy name `folded`.
pub(super) fn matches(key: &[u8], folded: &[u8]) -> bool {
    if key.is_ascii() {
        // The common case: no allocation, no char decoding.
        return key.eq_ignore_ascii_case(folded);
    }
    match (std::str::from_utf8(key), std::str::from_utf8(folded)) {
        (Ok(k), Ok(f)) => k.chars().map(fold_char).eq(f.chars()),
        _ => key == folded,
    }
}

/// A C0 control, DEL or a C1 control (U+0080..U+009F) in a decoded key: some upstreams
/// cut a name at NUL or drop controls, so `customer_note\u0000` could bind to `customer_note`.
pub(super) fn has_control(key: &[u8]) -> bool {
    key.iter().enumerate().any(|(i, &b)| {
        b < 0x20 || b == 0x7f || (b == 0xC2 && key.get(i + 1).is_some_and(|n| (0x80..=0x9F).contains(n)))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{fold_name, has_control, matches};

    #[test]
    fn deny_spellings() {
        let name = fold_name(b"customer_note");
        #[rustfmt::skip]
        let cases: &[(&str, &str, bool)] = &[
            ("exact", "customer_note", true),
            ("title", "Customer_Note", true),
            ("upper", "CUSTOMER_NOTE", true),
            ("long s", "cu\u{17F}tomer_note", true),
            ("fullwidth", "\u{FF43}ustomer_note", true),
            ("fullwidth upper", "\u{FF23}USTOMER_NOTE", true),
            ("different", "customer_notes", false),
            ("prefix", "customer_not", false),
            ("other letter", "customer_nöte", false),
        ];
        for (label, key, want) in cases {
            assert_eq!(matches(key.as_bytes(), &name), *want, "{label}");
        }
        let k = fold_name(b"kind");
        assert!(matches("\u{212A}IND".as_bytes(), &k), "kelvin");
        let i = fold_name(b"ip");
        assert!(matches("\u{131}p".as_bytes(), &i), "dotless i");
        assert!(matches("\u{130}P".as_bytes(), &i), "i with dot");
        let e = fold_name("émail".as_bytes());
        assert!(matches("ÉMAIL".as_bytes(), &e), "non-ascii name folds too");
    }

    #[test]
    fn controls() {
        for (key, want) in [
            ("a", false),
            ("é", false),
            ("a\0", true),
            ("\tb", true),
            ("a\x7f", true),
            ("a\u{85}", true),
            ("a\u{9f}", true),
            ("\u{a0}", false),
        ] {
            assert_eq!(has_control(key.as_bytes()), want, "{key:?}");
        }
    }
}
