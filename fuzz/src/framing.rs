//! The framing guard (`egress_guard::server::framing::Scanner`) against hyper's reading of the
//! same bytes. Property (docs/policy.md, refusal table, `bad_request`): whatever the client sends
//! and however the reads split it, no head that hyper parses from the bytes the guard let
//! through carries both Content-Length and Transfer-Encoding, or differing lengths.
//!
//! Input: byte 0 picks a split pattern, the rest is the client's byte stream. Each stream
//! is fed whole, byte by byte, and in the seeded pattern's pieces. The scanner is never
//! told that a CONNECT was accepted: the property is the refused-CONNECT case, where hyper
//! goes on reading requests on the connection.

use egress_guard::server::framing::{Scan, Scanner};

use crate::h1model;

pub fn check(data: &[u8]) {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    for (plan, pieces) in [
        ("whole", vec![stream]),
        ("byte by byte", stream.chunks(1).collect()),
        ("seeded", seeded_pieces(stream, seed)),
    ] {
        let delivered = deliver(&pieces);
        for head in h1model::heads(&delivered) {
            let lengths = head.lengths();
            assert!(
                head.content_length.is_empty() || head.transfer_encoding.is_empty(),
                "framing ({plan}): the guard let through a head with Content-Length and \
                 Transfer-Encoding at byte {}",
                head.offset
            );
            assert!(
                lengths.windows(2).all(|w| w[0] == w[1]),
                "framing ({plan}): the guard let through a head with differing Content-Length \
                 values {lengths:?} at byte {}",
                head.offset
            );
        }
    }
}

/// What reaches hyper: every read up to the one the scanner refused (`GuardedIo`
/// withholds that whole read and ends the stream).
fn deliver(pieces: &[&[u8]]) -> Vec<u8> {
    let mut scanner = Scanner::default();
    let mut delivered = Vec::new();
    for piece in pieces {
        if scanner.scan(piece) == Scan::Smuggling {
            break;
        }
        delivered.extend_from_slice(piece);
    }
    delivered
}

/// Reads of 1 to 32 bytes, lengths from a xorshift seeded by `seed`.
fn seeded_pieces(stream: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut x = u32::from(seed) | 0x100;
    let mut out = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let n = (x % 32 + 1) as usize;
        let (piece, tail) = rest.split_at(n.min(rest.len()));
        out.push(piece);
        rest = tail;
    }
    out
}
