//! Token-level JSON lexing shared by the filter: string, escape and number scanning, kept
//! apart from the filter state machine so each can be checked on its own.

use super::BodyError;

const M: BodyError = BodyError::Malformed;

/// Scans a string whose opening quote is at `start`; returns the index after the closing
/// quote and whether it held escapes. Rejects bad escapes, raw controls and invalid UTF-8.
pub(super) fn scan_string(inp: &[u8], start: usize) -> Result<(usize, bool), BodyError> {
    let mut i = start + 1;
    let mut esc = false;
    let mut ascii = true;
    loop {
        // Skip the plain run in one tight loop; only the rare special bytes branch below.
        let rest = inp.get(i..).unwrap_or(&[]);
        i += rest.iter().position(|&b| SPECIAL[usize::from(b)]).ok_or(M)?;
        match *inp.get(i).ok_or(M)? {
            b'"' => break,
            b'\\' => {
                esc = true;
                i = escape_at(inp, i)?.1;
            }
            0..=0x1f => return Err(M),
            _ => {
                ascii = false;
                i += 1;
            }
        }
    }
    if !ascii {
        // Escapes are ASCII, so validating the raw content validates the decoded text too.
        std::str::from_utf8(inp.get(start + 1..i).ok_or(M)?).map_err(|_| M)?;
    }
    Ok((i + 1, esc))
}

/// Bytes that end a plain run inside a string: quote, backslash, controls and non-ASCII.
const SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = b < 0x20 || b >= 0x80 || b == b'"' as usize || b == b'\\' as usize;
        b += 1;
    }
    t
};

/// Decodes the escape starting at `s[i] == b'\\'`; returns the char and the index after it.
pub(super) fn escape_at(s: &[u8], i: usize) -> Result<(char, usize), BodyError> {
    let c = match *s.get(i + 1).ok_or(M)? {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => return unicode_escape(s, i),
        _ => return Err(M),
    };
    Ok((c, i + 2))
}

fn unicode_escape(s: &[u8], i: usize) -> Result<(char, usize), BodyError> {
    let hi = hex4(s, i + 2)?;
    match hi {
        0xD800..=0xDBFF => {
            // A high surrogate is only valid as the first half of a `\uD8xx\uDCxx` pair.
            if s.get(i + 6..i + 8) != Some(b"\\u") {
                return Err(M);
            }
            let lo = hex4(s, i + 8)?;
            if !(0xDC00..=0xDFFF).contains(&lo) {
                return Err(M);
            }
            let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
            Ok((char::from_u32(cp).ok_or(M)?, i + 12))
        }
        _ => Ok((char::from_u32(hi).ok_or(M)?, i + 6)),
    }
}

fn hex4(s: &[u8], at: usize) -> Result<u32, BodyError> {
    let digits = s.get(at..at + 4).ok_or(M)?;
    digits.iter().try_fold(0u32, |acc, &b| {
        let d = char::from(b).to_digit(16).ok_or(M)?;
        Ok(acc * 16 + d)
    })
}

/// Appends the decoded form of raw string content (between the quotes) to `dst`.
pub(super) fn decode_into(content: &[u8], dst: &mut Vec<u8>) -> Result<(), BodyError> {
    let mut i = 0;
    while i < content.len() {
        let rest = content.get(i..).unwrap_or(&[]);
        let plain = rest.iter().position(|&b| b == b'\\').unwrap_or(rest.len());
        dst.extend_from_slice(rest.get(..plain).unwrap_or(&[]));
        i += plain;
        if i < content.len() {
            let (c, next) = escape_at(content, i)?;
            dst.extend_from_slice(c.encode_utf8(&mut [0u8; 4]).as_bytes());
            i = next;
        }
    }
    Ok(())
}

/// Scans an RFC 8259 number at `start`; returns the index after it. The text is never
/// converted, so huge values pass through exactly as written.
pub(super) fn scan_number(inp: &[u8], start: usize) -> Result<usize, BodyError> {
    let at = |i: usize| inp.get(i).copied().unwrap_or(0);
    let digits = |mut i: usize| {
        while at(i).is_ascii_digit() {
            i += 1;
        }
        i
    };
    let mut i = start;
    if at(i) == b'-' {
        i += 1;
    }
    i = match at(i) {
        b'0' => i + 1,
        b'1'..=b'9' => digits(i),
        _ => return Err(M),
    };
    if at(i) == b'.' {
        if !at(i + 1).is_ascii_digit() {
            return Err(M);
        }
        i = digits(i + 1);
    }
    if matches!(at(i), b'e' | b'E') {
        i += 1;
        if matches!(at(i), b'+' | b'-') {
            i += 1;
        }
        if !at(i).is_ascii_digit() {
            return Err(M);
        }
        i = digits(i);
    }
    Ok(i)
}
