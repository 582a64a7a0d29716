//! Every spelling of a secret the scrubber recognises: the secret and its
//! base64 forms (standard and URL-safe, all three alignments, with and without
//! padding), where each byte may be written literally, percent-encoded
//! (`%2F`, `%2f`, `%252F`, `+` for a space) or JSON-escaped (`\/`, `\u002f`).

use base64::Engine;
use zeroize::Zeroizing;

/// Longest spelling of one target byte (`\u00HH`); bounds every match.
const MAX_SPELLING: usize = 6;

/// Shorter base64 pieces (from secrets of a few bytes) would mask common
/// letters all over an answer.
const MIN_BASE64: usize = 4;

/// The byte strings (targets) whose spellings are masked, derived once per
/// secret and wiped on drop, with what the matcher needs to skip ahead fast.
pub struct Forms {
    targets: Vec<Zeroizing<Vec<u8>>>,
    /// For each byte value, the targets a spelling may start with it (most
    /// bytes start none; a percent sign or a backslash, every one).
    starts: Vec<Vec<usize>>,
    max_span: usize,
}

impl std::fmt::Debug for Forms {
    // Never print a target: each is the secret or an encoding of it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forms").field("targets", &self.targets.len()).finish()
    }
}

/// How an attempt to match one target from one position ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Attempt {
    /// End of the longest complete match.
    pub end: Option<usize>,
    /// The input ran out in the middle of a spelling that still fitted.
    pub partial: bool,
}

impl Forms {
    /// The forms of `secrets` (empty ones are skipped: they would match everywhere).
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a [u8]>) -> Forms {
        let mut targets = Vec::new();
        for s in secrets.into_iter().filter(|s| !s.is_empty()) {
            targets.push(Zeroizing::new(s.to_vec()));
            base64_forms(s, &mut targets);
        }
        targets.sort_by(|a, b| a.as_slice().cmp(b.as_slice()));
        targets.dedup_by(|a, b| a.as_slice() == b.as_slice());
        let starts = (0..=255u8)
            .map(|b| {
                let can = |t: &Zeroizing<Vec<u8>>| t.first().is_some_and(|&t0| could_start(t0, b));
                targets
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| can(t))
                    .map(|(i, _)| i)
                    .collect()
            })
            .collect();
        let max_span = targets.iter().map(|t| t.len()).max().unwrap_or(0) * MAX_SPELLING;
        Forms {
            targets,
            starts,
            max_span,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// The longest any match can be: bytes beyond it never need holding back.
    pub(super) fn max_span(&self) -> usize {
        self.max_span
    }

    pub(super) fn may_start(&self, b: u8) -> bool {
        self.starts.get(usize::from(b)).is_some_and(|s| !s.is_empty())
    }

    /// Calls `hit(start, end)` for the longest complete match of each target at each position.
    pub(super) fn for_each_match(&self, raw: &[u8], mut hit: impl FnMut(usize, usize)) {
        for (i, &b) in raw.iter().enumerate() {
            if !self.may_start(b) {
                continue;
            }
            for t in self.candidates(b) {
                if let Some(end) = attempt(t, raw, i).end {
                    hit(i, end);
                }
            }
        }
    }

    /// Earliest index from which `raw[i..]` could still grow into a match;
    /// bytes from there on must wait for more input.
    pub(super) fn hold_start(&self, raw: &[u8]) -> usize {
        let from = raw.len().saturating_sub(self.max_span().saturating_sub(1));
        for (i, &b) in raw.iter().enumerate().skip(from) {
            if self.may_start(b) && self.candidates(b).any(|t| attempt(t, raw, i).partial) {
                return i;
            }
        }
        raw.len()
    }

    fn candidates(&self, b: u8) -> impl Iterator<Item = &[u8]> + '_ {
        let starts = self.starts.get(usize::from(b)).map(Vec::as_slice).unwrap_or_default();
        starts.iter().filter_map(|&i| self.targets.get(i)).map(|t| t.as_slice())
    }
}

/// Whether input byte `b` can begin a spelling of target byte `t0`.
fn could_start(t0: u8, b: u8) -> bool {
    b == t0 || b == b'%' || b == b'\\' || (t0 == b' ' && b == b'+')
}

/// Base64 of `secret` as it appears inside a longer encoding: for each
/// alphabet and alignment, the characters that depend on the secret's bits
/// alone; then those plus the last, zero-filled character (the secret ends
/// the data, unpadded); then with the padding.
fn base64_forms(secret: &[u8], out: &mut Vec<Zeroizing<Vec<u8>>>) {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    for engine in [&STANDARD, &URL_SAFE] {
        for align in 0..3usize {
            let mut data = Zeroizing::new(vec![0u8; align]);
            data.extend_from_slice(secret);
            let enc = Zeroizing::new(engine.encode(data.as_slice()));
            let (bits_from, bits_to) = (8 * align, 8 * (align + secret.len()));
            let start = bits_from.div_ceil(6);
            for end in [bits_to / 6, bits_to.div_ceil(6), enc.len()] {
                if let Some(s) = enc.as_bytes().get(start..end).filter(|s| s.len() >= MIN_BASE64) {
                    out.push(Zeroizing::new(s.to_vec()));
                }
            }
        }
    }
}

/// One way to write target bytes `j..j + covers`: pattern bytes, where a
/// position flagged in `hex` is a hex digit that also matches upper-case.
struct Spelling {
    pat: [u8; 12],
    len: usize,
    hex: u16,
    covers: usize,
}

impl Spelling {
    fn new(bytes: &[u8], hex: u16, covers: usize) -> Spelling {
        let mut pat = [0u8; 12];
        let len = bytes.len().min(pat.len());
        if let (Some(dst), Some(src)) = (pat.get_mut(..len), bytes.get(..len)) {
            dst.copy_from_slice(src);
        }
        Spelling { pat, len, hex, covers }
    }
}

fn hex_digit(n: u8) -> u8 {
    let n = n & 15;
    if n < 10 {
        b'0' + n
    } else {
        b'a' + n - 10
    }
}

/// Lower-case hex of a 16-bit code unit.
fn hex4(u: u16) -> [u8; 4] {
    let [hi, lo] = u.to_be_bytes();
    [hex_digit(hi >> 4), hex_digit(hi), hex_digit(lo >> 4), hex_digit(lo)]
}

/// Calls `each` with every spelling of the target byte (or character) at
/// `j` that can begin with input byte `r` (every spelling when the input ran out).
fn spellings(t: &[u8], j: usize, r: Option<u8>, mut each: impl FnMut(&Spelling)) {
    let Some(&b) = t.get(j) else { return };
    let starts = |c: u8| r.is_none_or(|r| r == c);
    let (hi, lo) = (hex_digit(b >> 4), hex_digit(b));
    if starts(b) {
        each(&Spelling::new(&[b], 0, 1));
    }
    if starts(b'%') {
        each(&Spelling::new(&[b'%', hi, lo], 0b110, 1));
        each(&Spelling::new(&[b'%', b'2', b'5', hi, lo], 0b11000, 1));
    }
    if b == b' ' && starts(b'+') {
        each(&Spelling::new(b"+", 0, 1));
    }
    if !starts(b'\\') {
        return;
    }
    if b.is_ascii_punctuation() {
        each(&Spelling::new(&[b'\\', b], 0, 1));
    }
    if b.is_ascii() {
        each(&Spelling::new(&[b'\\', b'u', b'0', b'0', hi, lo], 0b110000, 1));
    } else if let Some((c, n)) = char_at(t, j) {
        // JSON escapes code points, not bytes: one `\u` (or a surrogate pair) per character.
        let mut units = [0u16; 2];
        let mut pat = [0u8; 12];
        let mut len = 0;
        for u in c.encode_utf16(&mut units).iter() {
            let [a, b2, c2, d] = hex4(*u);
            for (slot, v) in pat.iter_mut().skip(len).zip([b'\\', b'u', a, b2, c2, d]) {
                *slot = v;
            }
            len += 6;
        }
        each(&Spelling::new(pat.get(..len).unwrap_or_default(), 0b1111_0011_1100, n));
    }
}

/// The multi-byte UTF-8 character starting at `t[j]`, and its length.
fn char_at(t: &[u8], j: usize) -> Option<(char, usize)> {
    let n = match t.get(j)? {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => return None,
    };
    let s = std::str::from_utf8(t.get(j..j + n)?).ok()?;
    Some((s.chars().next()?, n))
}

enum Fit {
    Full(usize),
    Partial,
    No,
}

fn fit(sp: &Spelling, raw: &[u8], pos: usize) -> Fit {
    for (k, &p) in sp.pat.iter().take(sp.len).enumerate() {
        let Some(&r) = raw.get(pos + k) else {
            return Fit::Partial;
        };
        let hex = sp.hex & (1 << k) != 0;
        if r != p && !(hex && r.to_ascii_lowercase() == p) {
            return Fit::No;
        }
    }
    Fit::Full(pos + sp.len)
}

/// Matches `target` at `raw[at..]`, following the one spelling that fits at
/// each step; only where several fit (secrets holding `%` or `\`) does it
/// fall back to tracking every reachable position.
pub(super) fn attempt(target: &[u8], raw: &[u8], at: usize) -> Attempt {
    let (mut j, mut pos) = (0, at);
    while j < target.len() {
        // Where input and target agree on a byte that starts no escape, only
        // the literal spelling fits: the common case, taken without a Spelling.
        if let (Some(&t), Some(&r)) = (target.get(j), raw.get(pos)) {
            if t == r && t != b'%' && t != b'\\' {
                (j, pos) = (j + 1, pos + 1);
                continue;
            }
        }
        let (mut fits, mut next, mut partial) = (0, None, false);
        spellings(target, j, raw.get(pos).copied(), |sp| match fit(sp, raw, pos) {
            Fit::Full(end) => {
                fits += 1;
                next = Some((j + sp.covers, end));
            }
            Fit::Partial => {
                fits += 1;
                partial = true;
            }
            Fit::No => {}
        });
        if fits > 1 {
            return attempt_all(target, raw, at);
        }
        match next {
            Some((j2, end)) => (j, pos) = (j2, end),
            None => return Attempt { end: None, partial },
        }
    }
    Attempt {
        end: Some(pos),
        partial: false,
    }
}

/// The general case: every position reachable after spelling `target[..j]`.
fn attempt_all(target: &[u8], raw: &[u8], at: usize) -> Attempt {
    let mut reach: Vec<Vec<usize>> = vec![Vec::new(); target.len() + 1];
    if let Some(r) = reach.first_mut() {
        r.push(at);
    }
    let mut partial = false;
    for j in 0..target.len() {
        let here = reach.get_mut(j).map(std::mem::take).unwrap_or_default();
        for pos in here {
            spellings(target, j, raw.get(pos).copied(), |sp| match fit(sp, raw, pos) {
                Fit::Full(end) => {
                    if let Some(r) = reach.get_mut(j + sp.covers) {
                        if !r.contains(&end) {
                            r.push(end);
                        }
                    }
                }
                Fit::Partial => partial = true,
                Fit::No => {}
            });
        }
    }
    let end = reach.last().and_then(|r| r.iter().copied().max());
    Attempt { end, partial }
}
