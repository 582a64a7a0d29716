//! Named cases for the card scan: where a number may hide in text, which JSON number
//! notations reach it, and what must stay a non-card (IDs, dates, phone numbers).

use super::{looks_like_card, luhn, number_looks_like_card};

#[test]
fn text_table() {
    #[rustfmt::skip]
    let cases: &[(&str, &str, bool)] = &[
        ("visa plain", "4111111111111111", true),
        ("visa spaces", "4111 1111 1111 1111", true),
        ("visa dashes", "4111-1111-1111-1111", true),
        ("visa dots", "4111.1111.1111.1111", true),
        ("amex 4-6-5", "3782 822463 10005", true),
        ("mixed separators", "4111 1111-1111.1111", true),
        ("amex 15", "378282246310005", true),
        ("surrounding ws", "  4111111111111111\n", true),
        ("free text", "Karte: 4111 1111 1111 1111, danke", true),
        ("glued to words", "card4111111111111111exp", true),
        ("after digits group", "Bestellung 12345 4111 1111 1111 1111", true),
        ("before expiry", "4111 1111 1111 1111 12/26", true),
        ("second of two", "Ref 1234, Karte 4111-1111-1111-1111", true),
        ("decimal suffix", "4111111111111111.0", true),
        ("leading dash", "-4111111111111111", true),
        ("trailing dash", "4111111111111111-", true),
        ("fullwidth digits", "４１１１１１１１１１１１１１１１", true),
        ("arabic-indic digits", "٤١١١١١١١١١١١١١١١", true),
        ("mixed scripts in groups", "4111 ١١١١ 1111 1111", true),
        ("luhn invalid", "4111111111111112", false),
        ("12 digits", "411111111113", false),
        ("13 digits valid", "4222222222222", true),
        ("20 digit run is an id", "41111111111111111113", false),
        ("run of 20 then card is not split", "941111111111111111111", false),
        ("double space breaks", "4111  1111 1111 1111", false),
        ("double dash breaks", "4111--1111-1111-1111", false),
        ("letter breaks", "4111x11111111111", false),
        ("slash breaks", "4111/1111/1111/1111", false),
        ("date time", "2026-11-26T09:14:03", false),
        ("phone", "+33 6 12 34 56 78", false),
        ("vat id", "FR40303265045", false),
        ("empty", "", false),
        ("non-digit unicode", "Bâtiment B, 3e étage", false),
    ];
    for (name, input, want) in cases {
        assert_eq!(looks_like_card(input.as_bytes()), *want, "case {name}: {input:?}");
    }
}

#[test]
fn number_table() {
    #[rustfmt::skip]
    let cases: &[(&str, &str, bool)] = &[
        ("integer", "4111111111111111", true),
        ("negative", "-4111111111111111", true),
        ("trailing .0", "4111111111111111.0", true),
        ("exponent", "4.111111111111111e15", true),
        ("exponent upper plus", "4.111111111111111E+15", true),
        ("exponent negative", "41111111111111110e-1", true),
        ("leading zeros in fraction", "0.0004111111111111111e19", true),
        ("fraction truncated", "4111111111111111.25", true),
        ("fraction rounds up", "4111111111111110.9", true),
        ("amex exponent", "3.78282246310005e14", true),
        ("luhn invalid", "4111111111111112", false),
        ("too few digits", "411111111111", false),
        ("too many digits", "41111111111111111113", false),
        ("small float", "184.70", false),
        ("long fraction only", "0.4111111111111111", false),
        ("php float noise", "29.489999999999998", false),
        ("huge", "1e400", false),
        ("tiny", "1e-400", false),
        ("power of ten", "1e15", false),
        ("zero", "0", false),
        ("exponent saturates", "4e99999999999999999999999", false),
    ];
    for (name, input, want) in cases {
        assert_eq!(number_looks_like_card(input.as_bytes()), *want, "case {name}: {input}");
    }
}

#[test]
fn every_card_length_in_every_grouping_is_found() {
    for len in 13..=19usize {
        let base: String = (0..len - 1).map(|i| char::from(b'1' + (i % 9) as u8)).collect();
        let check = (0..10u8)
            .find(|c| {
                let d: Vec<u8> = format!("{base}{c}").bytes().map(|b| b - b'0').collect();
                luhn(&d)
            })
            .unwrap();
        let card = format!("{base}{check}");
        for sep in ["", " ", "-", "."] {
            let grouped: Vec<String> = card
                .as_bytes()
                .chunks(4)
                .map(|c| String::from_utf8(c.to_vec()).unwrap())
                .collect();
            let text = format!("note: {} thanks", grouped.join(sep));
            assert!(looks_like_card(text.as_bytes()), "{len} digits, sep {sep:?}: {text}");
        }
        assert!(number_looks_like_card(card.as_bytes()), "{len} digits as a number");
    }
}

#[test]
fn long_text_with_many_groups_is_scanned_in_windows() {
    // Many short groups, then the card: the retained window must slide, not overflow.
    let text = format!("{} 4111 1111 1111 1111", "1 2 3 4 5 6 7 8 9 0".repeat(20));
    assert!(looks_like_card(text.as_bytes()));
    let text = "12 ".repeat(200);
    assert!(!looks_like_card(text.as_bytes()));
}

/// Brute force over the documented rule: every run of whole groups, each pair of
/// neighbours split by exactly one separator, none longer than 19 digits.
fn reference(text: &str) -> bool {
    let digit = |c: char| c.is_ascii_digit() || ('\u{FF10}'..='\u{FF19}').contains(&c);
    let value = |c: char| {
        if c.is_ascii_digit() {
            c as u8 - b'0'
        } else {
            (c as u32 - 0xFF10) as u8
        }
    };
    let chars: Vec<char> = text.chars().collect();
    // (digits, joined to the previous group)
    let mut groups: Vec<(Vec<u8>, bool)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !digit(chars[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && digit(chars[i]) {
            i += 1;
        }
        let joined = start >= 2 && matches!(chars[start - 1], ' ' | '-' | '.') && digit(chars[start - 2]);
        groups.push((chars[start..i].iter().map(|&c| value(c)).collect(), joined));
    }
    for a in 0..groups.len() {
        let mut all = Vec::new();
        for (b, (g, joined)) in groups.iter().enumerate().skip(a) {
            if (b > a && !joined) || g.len() > 19 {
                break;
            }
            all.extend_from_slice(g);
            if (13..=19).contains(&all.len()) && luhn(&all) {
                return true;
            }
        }
    }
    false
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

    #[test]
    fn scan_matches_reference(parts in proptest::collection::vec(
        proptest::prop_oneof![
            6 => proptest::sample::select(vec!["4111", "1111", "0", "12", "9", "378282246310005", "4111111111111111"]),
            3 => proptest::sample::select(vec![" ", "-", ".", "  ", "x", ",", "\u{FF14}", "é"]),
        ], 0..24)) {
        let text: String = parts.concat();
        proptest::prop_assert_eq!(looks_like_card(text.as_bytes()), reference(&text), "{:?}", text);
    }

    #[test]
    fn numbers_are_read_by_value(digits in "[1-9][0-9]{12,18}", point in 1usize..19, zeros in 0usize..3, neg in proptest::bool::ANY) {
        // The same integer with its decimal point moved and an exponent to match.
        let point = point.min(digits.len());
        let (head, tail) = digits.split_at(point);
        let exp = digits.len() - point;
        let text = format!("{}{head}.{tail}{}e{exp}", if neg { "-" } else { "" }, "0".repeat(zeros));
        let d: Vec<u8> = digits.bytes().map(|b| b - b'0').collect();
        proptest::prop_assert_eq!(number_looks_like_card(text.as_bytes()), luhn(&d), "{}", text);
    }
}
