//! Payment-card detection for what the proxy lets through: anywhere in a text, 13 to 19
//! digits (one run, or groups split by single spaces, dashes or dots) passing the Luhn
//! check; and JSON numbers in any notation, by the integer value an upstream would read.

/// Longest card number (ISO/IEC 7812 allows up to 19 digits).
const MAX_DIGITS: usize = 19;
const MIN_DIGITS: usize = 13;

/// True when `s` holds a card-like number anywhere: a digit group sequence (groups of ASCII
/// or Unicode decimal digits joined by exactly one ' ', '-' or '.') any run of whole,
/// consecutive groups of which has 13 to 19 digits and passes Luhn. A single run of more
/// than 19 digits is an identifier, not a card, and is not searched inside.
pub fn looks_like_card(s: &[u8]) -> bool {
    let (mut digits, mut high) = (0usize, 0u8);
    for &b in s {
        digits += usize::from(b.is_ascii_digit());
        high |= b;
    }
    if high < 0x80 {
        // Fewer than 13 digits in all: no card can hide here (the common case, one pass).
        digits >= MIN_DIGITS && scan_ascii(s)
    } else {
        // Python's int() and Java's parseLong read any Unicode decimal digit ("４" is 4).
        scan_unicode(&String::from_utf8_lossy(s))
    }
}

/// The ASCII case: jumps from digit run to digit run.
fn scan_ascii(s: &[u8]) -> bool {
    let mut scan = Scanner::default();
    let mut group = [0u8; MAX_DIGITS];
    let (mut at, mut prev_end) = (0, usize::MAX);
    while let Some(off) = s.get(at..).and_then(|r| r.iter().position(u8::is_ascii_digit)) {
        let start = at + off;
        let run = s.get(start..).unwrap_or(&[]);
        let len = run.iter().position(|b| !b.is_ascii_digit()).unwrap_or(run.len());
        let joined = prev_end.checked_add(1) == Some(start) && s.get(prev_end).is_some_and(|&b| is_sep(b));
        for (slot, d) in group.iter_mut().zip(run.get(..len).unwrap_or(&[])) {
            *slot = d.wrapping_sub(b'0');
        }
        if scan.group(group.get(..len.min(MAX_DIGITS)).unwrap_or(&[]), len, joined) {
            return true;
        }
        at = start + len;
        prev_end = at;
    }
    false
}

/// Any text: digits are every Unicode decimal digit; separators stay ASCII.
fn scan_unicode(text: &str) -> bool {
    let mut scan = Scanner::default();
    let mut group = [0u8; MAX_DIGITS];
    // Digits in the open group, and what preceded it: nothing, one separator, or more.
    let (mut len, mut seps, mut joined) = (0usize, 2u8, false);
    for c in text.chars() {
        let digit = if c.is_ascii_digit() {
            Some(c as u8 - b'0')
        } else {
            unicode_digit(c)
        };
        if let Some(d) = digit {
            if len == 0 {
                joined = seps == 1;
            }
            if let Some(slot) = group.get_mut(len) {
                *slot = d;
            }
            len += 1;
            continue;
        }
        if len > 0 && scan.group(group.get(..len.min(MAX_DIGITS)).unwrap_or(&[]), len, joined) {
            return true;
        }
        seps = match (len > 0, c.is_ascii() && is_sep(c as u8)) {
            (true, true) => 1,
            (false, true) => seps.saturating_add(1),
            (_, false) => 2,
        };
        len = 0;
    }
    len > 0 && scan.group(group.get(..len.min(MAX_DIGITS)).unwrap_or(&[]), len, joined)
}

fn is_sep(b: u8) -> bool {
    matches!(b, b' ' | b'-' | b'.')
}

/// True when the JSON number `raw` (validated RFC 8259 text), read as a number, has an
/// integer part of 13 to 19 digits passing Luhn: `4111111111111111`, `4.111111111111111e15`
/// and `4111111111111111.0` alike. A fractional part is also rounded up, since a double
/// parser may round `4111111111111110.9` to the card.
pub fn number_looks_like_card(raw: &[u8]) -> bool {
    // Cheap reject: no exponent and too short to hold 13 integer digits.
    if raw.len() < MIN_DIGITS && !raw.iter().any(|&b| b == b'e' || b == b'E') {
        return false;
    }
    let raw = raw.strip_prefix(b"-").unwrap_or(raw);
    let (mantissa, exp) = match raw.iter().position(|&b| b == b'e' || b == b'E') {
        Some(i) => (raw.get(..i).unwrap_or(&[]), exponent(raw.get(i + 1..).unwrap_or(&[]))),
        None => (raw, 0),
    };
    let int_len = mantissa.iter().position(|&b| b == b'.').unwrap_or(mantissa.len());
    let mut all = mantissa.iter().filter(|b| b.is_ascii_digit()).map(|b| b - b'0');
    // Leading zeros carry no value: drop them, moving the decimal point with them.
    let lead = all.clone().take_while(|&d| d == 0).count();
    let point = i64::try_from(int_len).unwrap_or(i64::MAX).saturating_add(exp);
    let point = point.saturating_sub(i64::try_from(lead).unwrap_or(0));
    let Some(n) = usize::try_from(point)
        .ok()
        .filter(|n| (MIN_DIGITS..=MAX_DIGITS).contains(n))
    else {
        return false;
    };
    let mut sig = all.by_ref().skip(lead);
    let mut int = [0u8; MAX_DIGITS + 1];
    for slot in int.iter_mut().take(n) {
        *slot = sig.next().unwrap_or(0);
    }
    let fraction = sig.any(|d| d != 0);
    let int = int.get(..n).unwrap_or(&[]);
    luhn(int) || (fraction && round_up(int).is_some_and(|up| luhn(up.get(..n).unwrap_or(&[]))))
}

/// The exponent's value, saturated (validated text, so only sign and digits).
fn exponent(e: &[u8]) -> i64 {
    let (neg, digits) = match e.first() {
        Some(b'-') => (true, e.get(1..).unwrap_or(&[])),
        Some(b'+') => (false, e.get(1..).unwrap_or(&[])),
        _ => (false, e),
    };
    let v = digits.iter().fold(0i64, |acc, &d| {
        acc.saturating_mul(10).saturating_add(i64::from(d.wrapping_sub(b'0')))
    });
    if neg {
        -v
    } else {
        v
    }
}

/// `int + 1`, unless that carries into one more digit (then it is no longer `int`'s length).
fn round_up(int: &[u8]) -> Option<[u8; MAX_DIGITS + 1]> {
    let mut up = [0u8; MAX_DIGITS + 1];
    up.get_mut(..int.len())?.copy_from_slice(int);
    for d in up.get_mut(..int.len())?.iter_mut().rev() {
        if *d < 9 {
            *d += 1;
            return Some(up);
        }
        *d = 0;
    }
    None
}

/// First code point of each block of ten Unicode decimal digits (general category Nd),
/// beyond ASCII: Unicode 14 as Python's `unicodedata` lists it, plus 15's Kawi and Nag
/// Mundari. Every Nd block is ten consecutive code points, zero first.
const ND_ZEROS: [u32; 67] = [
    0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66, 0xDE6, 0xE50, 0xED0, 0xF20,
    0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0,
    0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10, 0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0,
    0x11450, 0x114D0, 0x11650, 0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x11F50, 0x16A60,
    0x16AC0, 0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E4F0, 0x1E950, 0x1FBF0,
];

/// The value of a non-ASCII decimal digit, if `c` is one.
fn unicode_digit(c: char) -> Option<u8> {
    let cp = u32::from(c);
    let i = ND_ZEROS.partition_point(|&z| z <= cp).checked_sub(1)?;
    let off = cp - ND_ZEROS.get(i)?;
    u8::try_from(off).ok().filter(|&d| d < 10)
}

/// The digit groups of the current sequence, oldest first. Only the last 18 digits' worth
/// of whole groups are kept: any later window adds at least one digit of its own.
struct Scanner {
    digits: [u8; 2 * MAX_DIGITS],
    len: usize,
    groups: [u8; 2 * MAX_DIGITS],
    ngroups: usize,
}

impl Default for Scanner {
    fn default() -> Scanner {
        Scanner {
            digits: [0; 2 * MAX_DIGITS],
            len: 0,
            groups: [0; 2 * MAX_DIGITS],
            ngroups: 0,
        }
    }
}

impl Scanner {
    /// Adds a group of `len` digits (`digits` holds them when `len` <= 19), `joined` to the
    /// previous one by a single separator; true when a window ending with it is card-like.
    fn group(&mut self, digits: &[u8], len: usize, joined: bool) -> bool {
        if !joined || len > MAX_DIGITS {
            // A new sequence; a run too long for any window also cuts the sequence.
            self.len = 0;
            self.ngroups = 0;
            if len > MAX_DIGITS {
                return false;
            }
        }
        let Some(dst) = self.digits.get_mut(self.len..self.len + len) else {
            return false;
        };
        dst.copy_from_slice(digits);
        self.len += len;
        if let Some(slot) = self.groups.get_mut(self.ngroups) {
            *slot = len as u8;
            self.ngroups += 1;
        }
        let mut total = 0;
        for &g in self.groups.get(..self.ngroups).unwrap_or(&[]).iter().rev() {
            total += usize::from(g);
            if total > MAX_DIGITS {
                break;
            }
            if total >= MIN_DIGITS && luhn(self.digits.get(self.len.saturating_sub(total)..self.len).unwrap_or(&[])) {
                return true;
            }
        }
        self.trim();
        false
    }

    /// Drops the oldest groups until at most `MAX_DIGITS - 1` digits remain.
    fn trim(&mut self) {
        let (mut drop_groups, mut drop_digits) = (0, 0);
        for &g in self.groups.get(..self.ngroups).unwrap_or(&[]) {
            if self.len - drop_digits < MAX_DIGITS {
                break;
            }
            drop_groups += 1;
            drop_digits += usize::from(g);
        }
        if drop_groups > 0 {
            self.groups.copy_within(drop_groups..self.ngroups, 0);
            self.digits.copy_within(drop_digits..self.len, 0);
            self.ngroups -= drop_groups;
            self.len -= drop_digits;
        }
    }
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            match (i % 2 == 1, d * 2) {
                (true, x) if x > 9 => x - 9,
                (true, x) => x,
                (false, _) => d,
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
#[path = "cardscan_tests.rs"]
mod tests;
