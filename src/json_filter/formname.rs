//! Form field names read strictly: `base[key][0][]`, decoded first (PHP and `qs` both decode
//! `%5B` before they look for brackets). Any name PHP's `parse_str` and Express's `qs` could
//! read differently from the plain bracket grammar is refused rather than guessed at.

use super::fold::has_control;

/// Most bracket groups after the base: `qs` (Express's extended forms) stops splitting at
/// depth 5 and keeps the rest as one literal key, so a deeper name would read differently.
pub const MAX_FORM_DEPTH: usize = 5;

/// Why a form body or query string was refused. Carries no input bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormError {
    /// Bad percent-encoding, not UTF-8 once decoded, or a name outside the strict grammar
    /// (unbalanced brackets, control characters, `.` or spaces, an empty base, raw `;`).
    Malformed,
    /// The same scalar name twice (PHP keeps the last, `qs` makes an array).
    Duplicate,
    /// One name used both as a scalar and as a container (`a=1&a[b]=2`).
    Conflict,
    /// More than `MAX_FORM_DEPTH` bracket groups.
    TooDeep,
}

impl std::fmt::Display for FormError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FormError::Malformed => "malformed form data",
            FormError::Duplicate => "the same form name twice",
            FormError::Conflict => "a form name used as a scalar and as a container",
            FormError::TooDeep => "form name nested too deeply",
        })
    }
}

impl std::error::Error for FormError {}

/// One step of a decoded name; ranges index the decoded name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// The base or a non-numeric index: `a`, `[b]`.
    Key(usize, usize),
    /// A canonical decimal index: `[0]`, `[12]`.
    Index,
    /// `[]`: a new element each time.
    Append,
}

/// Parses the decoded name into `steps` (cleared first) and returns, for each step, the end
/// of the name prefix it closes in `ends` (cleared first): `a[b][]` gives ends 1, 4, 6.
pub(super) fn parse(name: &[u8], steps: &mut Vec<Step>, ends: &mut Vec<usize>) -> Result<(), FormError> {
    steps.clear();
    ends.clear();
    if has_control(name) {
        return Err(FormError::Malformed);
    }
    let base_end = name.iter().position(|&b| b == b'[').unwrap_or(name.len());
    let base = name.get(..base_end).unwrap_or_default();
    // PHP reads `.` and ` ` in the base as `_` and drops leading spaces; `qs` with
    // `allowDots` reads `.` as nesting. Neither spelling can be trusted, so neither passes.
    if base.is_empty() || base.iter().any(|&b| matches!(b, b']' | b'.' | b' ')) {
        return Err(FormError::Malformed);
    }
    steps.push(Step::Key(0, base_end));
    ends.push(base_end);
    let mut at = base_end;
    while at < name.len() {
        if name.get(at) != Some(&b'[') {
            // `a[b]c`: PHP drops the tail, `qs` keeps it.
            return Err(FormError::Malformed);
        }
        let open = at + 1;
        let len = name
            .get(open..)
            .and_then(|r| r.iter().position(|&b| b == b']'))
            .ok_or(FormError::Malformed)?;
        let close = open + len;
        let index = name.get(open..close).unwrap_or_default();
        if index.iter().any(|&b| b == b'[' || b == b'.') {
            return Err(FormError::Malformed);
        }
        if steps.len() > MAX_FORM_DEPTH {
            return Err(FormError::TooDeep);
        }
        steps.push(if index.is_empty() {
            Step::Append
        } else if is_canonical_index(index) {
            Step::Index
        } else if php_integer_key(index) {
            // PHP makes it an integer key (a list index) where we would read an
            // object key, and qs reads it as a key: parsers disagree, so refuse.
            return Err(FormError::Malformed);
        } else {
            Step::Key(open, close)
        });
        at = close + 1;
        ends.push(at);
    }
    Ok(())
}

/// What PHP reads as an integer array key: `0`, or a decimal without a leading
/// zero, with an optional `-` (a too-long one is refused above, not read).
fn php_integer_key(s: &[u8]) -> bool {
    let digits = s.strip_prefix(b"-").unwrap_or(s);
    matches!(digits, [b'1'..=b'9', ..]) && digits.iter().all(u8::is_ascii_digit) || s == b"0"
}

/// `0` or a decimal without a leading zero, short enough that PHP makes it an integer key.
fn is_canonical_index(s: &[u8]) -> bool {
    match s {
        [b'0'] => true,
        [b'1'..=b'9', rest @ ..] => rest.len() < 9 && rest.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// Form decoding into `out` (cleared first): `+` is a space, `%XX` a byte; a `%` not
/// followed by two hex digits is malformed, and so is a result that is not UTF-8.
pub(super) fn decode(s: &[u8], out: &mut Vec<u8>) -> Result<(), FormError> {
    out.clear();
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        match b {
            b'%' => {
                let hex = |j: usize| s.get(j).and_then(|c| char::from(*c).to_digit(16));
                let (Some(h), Some(l)) = (hex(i + 1), hex(i + 2)) else {
                    return Err(FormError::Malformed);
                };
                out.push(u8::try_from(h * 16 + l).map_err(|_| FormError::Malformed)?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    if std::str::from_utf8(out).is_err() {
        return Err(FormError::Malformed);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{decode, parse, FormError, Step};

    #[test]
    fn names() {
        use Step::*;
        #[rustfmt::skip]
        let ok: &[(&str, &[Step])] = &[
            ("a", &[Key(0, 1)]),
            ("a[b]", &[Key(0, 1), Key(2, 3)]),
            ("a[]", &[Key(0, 1), Append]),
            ("a[0]", &[Key(0, 1), Index]),
            ("a[10][sku]", &[Key(0, 1), Index, Key(6, 9)]),
            ("a[01]", &[Key(0, 1), Key(2, 4)]),
            ("a[ b]", &[Key(0, 1), Key(2, 4)]),
            ("a[1][2][3][4][5]", &[Key(0, 1), Index, Index, Index, Index, Index]),
        ];
        let (mut steps, mut ends) = (Vec::new(), Vec::new());
        for (name, want) in ok {
            parse(name.as_bytes(), &mut steps, &mut ends).unwrap();
            assert_eq!(steps, *want, "{name}");
            assert_eq!(ends.last(), Some(&name.len()), "{name}");
        }
        #[rustfmt::skip]
        let bad: &[(&str, &str, FormError)] = &[
            ("empty", "", FormError::Malformed),
            ("no base", "[a]", FormError::Malformed),
            ("dot in base", "a.b", FormError::Malformed),
            ("space in base", "a b", FormError::Malformed),
            ("leading space", " a", FormError::Malformed),
            ("open bracket only", "a[b", FormError::Malformed),
            ("close bracket only", "a]", FormError::Malformed),
            ("bracket in index", "a[b[c]]", FormError::Malformed),
            ("double close", "a[b]]", FormError::Malformed),
            ("tail after group", "a[b]c", FormError::Malformed),
            ("dot in index", "a[b.c]", FormError::Malformed),
            ("nul", "a\0", FormError::Malformed),
            ("nul in index", "a[b\0]", FormError::Malformed),
            ("index PHP reads as an integer, too long for us", "meta[6666666666666666]", FormError::Malformed),
            ("negative index PHP reads as an integer", "a[-5]", FormError::Malformed),
            ("tab", "a\tb", FormError::Malformed),
            ("c1 control", "a\u{85}", FormError::Malformed),
            ("six groups", "a[1][2][3][4][5][6]", FormError::TooDeep),
        ];
        for (label, name, want) in bad {
            assert_eq!(parse(name.as_bytes(), &mut steps, &mut ends), Err(*want), "{label}");
        }
    }

    #[test]
    fn decoding() {
        let mut out = Vec::new();
        for (raw, want) in [
            ("a+b", Some("a b")),
            ("%5Bx%5d", Some("[x]")),
            ("%C3%A9", Some("é")),
            ("é", Some("é")),
            ("%", None),
            ("%4", None),
            ("%zz", None),
            ("%u0041", None),
            ("%C3", None),
            ("%FF", None),
        ] {
            let got = decode(raw.as_bytes(), &mut out)
                .ok()
                .map(|()| String::from_utf8(out.clone()).unwrap());
            assert_eq!(got.as_deref(), want, "{raw}");
        }
    }
}
