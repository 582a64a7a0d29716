//! Payment-card detection for values the proxy lets through: digit groups of plausible
//! card length that pass the Luhn check, so random IDs rarely trigger it.

/// Longest card number (ISO/IEC 7812 allows up to 19 digits).
const MAX_DIGITS: usize = 19;
const MIN_DIGITS: usize = 13;

/// True when `s`, after trimming surrounding whitespace, is 13 to 19 digits, optionally
/// grouped by single spaces or single dashes, and Luhn-valid.
pub fn looks_like_card(s: &[u8]) -> bool {
    let s = s.trim_ascii();
    // Cheap reject before the digit walk: the common case is a short string or number.
    if s.len() < MIN_DIGITS || s.len() > MAX_DIGITS * 2 - 1 {
        return false;
    }
    let mut digits = [0u8; MAX_DIGITS];
    let mut n = 0;
    // Starting "after a separator" rejects a leading space or dash.
    let mut prev_sep = true;
    for &b in s {
        match b {
            b'0'..=b'9' => {
                let Some(slot) = digits.get_mut(n) else {
                    return false;
                };
                *slot = b - b'0';
                n += 1;
                prev_sep = false;
            }
            b' ' | b'-' if !prev_sep => prev_sep = true,
            _ => return false,
        }
    }
    !prev_sep && n >= MIN_DIGITS && luhn(digits.get(..n).unwrap_or(&[]))
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::looks_like_card;

    #[test]
    fn table() {
        let cases: &[(&str, &str, bool)] = &[
            ("visa plain", "4111111111111111", true),
            ("visa spaces", "4111 1111 1111 1111", true),
            ("visa dashes", "4111-1111-1111-1111", true),
            ("amex 15", "378282246310005", true),
            ("surrounding ws", "  4111111111111111\n", true),
            ("luhn invalid", "4111111111111112", false),
            ("12 digits", "411111111113", false),
            ("13 digits valid", "4222222222222", true),
            ("19 digits valid", "6011000990139424000", luhn_ok("6011000990139424000")),
            ("20 digits", "41111111111111111113", false),
            ("double space", "4111  1111 1111 1111", false),
            ("double dash", "4111--1111-1111-1111", false),
            ("leading dash", "-4111111111111111", false),
            ("trailing dash", "4111111111111111-", false),
            ("letters", "4111x11111111111", false),
            ("decimal", "4111111111111111.0", false),
            ("empty", "", false),
        ];
        for (name, input, want) in cases {
            assert_eq!(looks_like_card(input.as_bytes()), *want, "case {name}");
        }
    }

    fn luhn_ok(s: &str) -> bool {
        let d: Vec<u8> = s.bytes().map(|b| b - b'0').collect();
        super::luhn(&d)
    }

    #[test]
    fn nineteen_digit_luhn_valid_is_card() {
        // 18 digits + computed check digit.
        let base = "601100099013942400";
        let check = (0..10u8).find(|c| luhn_ok(&format!("{base}{c}"))).unwrap();
        assert!(looks_like_card(format!("{base}{check}").as_bytes()));
    }
}
