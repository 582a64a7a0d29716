//! The chain's bytes: how a record is sealed into a line and how a line is
//! opened and checked again. Pure functions, shared by the writer, the start-up
//! tail check and `egress-guard audit verify`, so the three cannot disagree.
//!
//! A line is `P` with its closing `}` replaced by `,"chain":"H"}` and a `\n`
//! after it, where `P` is the record (one compact JSON object, no raw newline)
//! and `H` is the lowercase hex of HMAC-SHA256(key, `PREV` || `P`). `PREV` is
//! the 64 hex characters of the chain that precedes the record: the previous
//! line's `chain`, or [`GENESIS`] for a record that starts a chain (a
//! `chain_break`, or a `file_start` whose `prev_chain` says so).

use ring::hmac;

/// The chain a fresh chain starts from: 64 zeros.
pub const GENESIS: Chain = Chain([b'0'; 64]);

/// Bytes after the record's last member: `,"chain":"` + 64 hex + `"}`.
const SUFFIX_LEN: usize = 10 + 64 + 2;

/// One link: 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Chain(pub [u8; 64]);

impl Chain {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// A chain as written in a record (`prev_chain`): exactly 64 lowercase hex.
    pub fn parse(text: &str) -> Option<Chain> {
        let bytes: [u8; 64] = text.as_bytes().try_into().ok()?;
        bytes
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
            .then_some(Chain(bytes))
    }
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The HMAC key of the chain. Debug prints nothing of it.
#[derive(Clone)]
pub struct ChainKey(hmac::Key);

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainKey(<redacted>)")
    }
}

impl ChainKey {
    pub fn new(secret: &[u8]) -> ChainKey {
        ChainKey(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    /// The chain of `record` after `prev`.
    pub fn link(&self, prev: &Chain, record: &[u8]) -> Chain {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(&prev.0);
        ctx.update(record);
        hex(ctx.sign().as_ref())
    }

    /// Appends the line of `record` (a JSON object) after `prev` to `out` and
    /// returns its chain. `None` when `record` is not a one-line object.
    pub fn seal(&self, prev: &Chain, record: &[u8], out: &mut Vec<u8>) -> Option<Chain> {
        let (last, head) = record.split_last().filter(|_| record.first() == Some(&b'{'))?;
        if *last != b'}' || record.contains(&b'\n') {
            return None;
        }
        let chain = self.link(prev, record);
        out.extend_from_slice(head);
        if head.len() > 1 {
            out.push(b',');
        }
        out.extend_from_slice(b"\"chain\":\"");
        out.extend_from_slice(&chain.0);
        out.extend_from_slice(b"\"}\n");
        Some(chain)
    }
}

/// A line taken apart: the record as it was sealed, and the chain it claims.
pub struct Opened {
    pub record: Vec<u8>,
    pub chain: Chain,
}

/// Splits a line (without its `\n`) into its record and claimed chain.
pub fn open(line: &[u8]) -> Result<Opened, &'static str> {
    let cut = line.len().checked_sub(SUFFIX_LEN).ok_or("too short to carry a chain")?;
    let (head, suffix) = line.split_at(cut);
    let hexpart = suffix
        .strip_prefix(b",\"chain\":\"")
        .and_then(|s| s.strip_suffix(b"\"}"))
        .ok_or("no `chain` member at the end of the line")?;
    let chain = std::str::from_utf8(hexpart)
        .ok()
        .and_then(Chain::parse)
        .ok_or("the `chain` member is not 64 lowercase hex digits")?;
    let mut record = Vec::with_capacity(head.len() + 1);
    record.extend_from_slice(head);
    record.push(b'}');
    Ok(Opened { record, chain })
}

fn hex(bytes: &[u8]) -> Chain {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'0'; 64];
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        if let [hi, lo] = pair {
            *hi = DIGITS[usize::from(b >> 4)];
            *lo = DIGITS[usize::from(b & 0x0f)];
        }
    }
    Chain(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_line_opens_to_its_record_and_chain() {
        let key = ChainKey::new(b"0123456789abcdef0123456789abcdef");
        let mut out = Vec::new();
        let c1 = key.seal(&GENESIS, br#"{"a":1}"#, &mut out).unwrap();
        let c2 = key.seal(&c1, br#"{"b":"x"}"#, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], format!("{{\"a\":1,\"chain\":\"{c1:?}\"}}"));
        let o = open(lines[1].as_bytes()).unwrap();
        assert_eq!(o.record, br#"{"b":"x"}"#);
        assert_eq!(o.chain, c2);
        assert_eq!(key.link(&c1, &o.record), c2);
        assert_ne!(
            ChainKey::new(b"another key of the same length!!").link(&c1, &o.record),
            c2
        );
    }

    #[test]
    fn lines_that_are_not_sealed_do_not_open() {
        let upper = format!("{{\"chain\":\"{}\"}}", "A".repeat(64));
        let cases: &[(&str, &[u8])] = &[
            ("empty", b""),
            (
                "no chain",
                br#"{"a":1,"b":"0000000000000000000000000000000000000000000000000000000000000000000000000"}"#,
            ),
            ("upper hex", upper.as_bytes()),
        ];
        for (name, line) in cases {
            assert!(open(line).is_err(), "{name}");
        }
        let key = ChainKey::new(b"k");
        assert!(key.seal(&GENESIS, b"{\"a\":\n1}", &mut Vec::new()).is_none());
        assert!(key.seal(&GENESIS, b"[1]", &mut Vec::new()).is_none());
    }
}
