//! Replaces injected API keys in upstream answers with same-length runs of `*`,
//! both in complete byte strings and in streamed bodies whose chunks may split a key.
//! A byte is masked when any occurrence of any secret (overlapping ones included) covers it.

use bytes::Bytes;
use zeroize::Zeroizing;

/// What a masked byte becomes; one byte per byte so lengths never change.
const MASK: u8 = b'*';

/// Borrowed secrets plus a first-byte table, so most positions are skipped
/// cheaply; builds without allocating so `scrub_all`'s no-hit path stays free.
struct Matcher<'a> {
    secrets: &'a [Bytes],
    first: [bool; 256],
    max_len: usize,
}

impl<'a> Matcher<'a> {
    fn new(secrets: &'a [Bytes]) -> Self {
        let mut first = [false; 256];
        for b in secrets.iter().filter_map(|s| s.first()) {
            if let Some(slot) = first.get_mut(usize::from(*b)) {
                *slot = true;
            }
        }
        let max_len = secrets.iter().map(|s| s.len()).max().unwrap_or(0);
        Matcher {
            secrets,
            first,
            max_len,
        }
    }

    /// Non-empty secrets only: an empty one would "match" everywhere.
    fn iter(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.secrets.iter().map(|s| s.as_ref()).filter(|s| !s.is_empty())
    }

    fn may_start(&self, b: u8) -> bool {
        self.first.get(usize::from(b)).copied().unwrap_or(false)
    }

    /// Calls `hit(start, len)` for every complete occurrence of every secret in `raw`.
    fn for_each_match(&self, raw: &[u8], mut hit: impl FnMut(usize, usize)) {
        for (i, &b) in raw.iter().enumerate() {
            if !self.may_start(b) {
                continue;
            }
            let rest = raw.get(i..).unwrap_or_default();
            for s in self.iter() {
                if rest.starts_with(s) {
                    hit(i, s.len());
                }
            }
        }
    }

    /// Earliest index from which `raw[i..]` could still grow into a secret; bytes
    /// from there on must wait for more input. At most `max_len - 1` bytes qualify.
    fn hold_start(&self, raw: &[u8]) -> usize {
        let from = raw.len().saturating_sub(self.max_len.saturating_sub(1));
        for i in from..raw.len() {
            let tail = raw.get(i..).unwrap_or_default();
            let partial = self.iter().any(|s| s.len() > tail.len() && s.starts_with(tail));
            if partial {
                return i;
            }
        }
        raw.len()
    }
}

/// Marks `start..start + len` in `mask`, clamped to its bounds.
fn mark(mask: &mut [bool], start: usize, len: usize) {
    let end = start.saturating_add(len).min(mask.len());
    if let Some(span) = mask.get_mut(start..end) {
        span.fill(true);
    }
}

/// Copies `raw`, replacing the bytes flagged in `mask`.
fn apply(raw: &[u8], mask: &[bool]) -> Vec<u8> {
    raw.iter()
        .zip(mask.iter().chain(std::iter::repeat(&false)))
        .map(|(&b, &m)| if m { MASK } else { b })
        .collect()
}

/// Streaming scrubber: feed chunks with [`Scrubber::push`], end with [`Scrubber::finish`].
pub struct Scrubber {
    secrets: Vec<Bytes>,
    /// Unmasked tail that may be the start of a secret; kept raw so that a
    /// longer secret overlapping an already-masked one is still recognised.
    held: Zeroizing<Vec<u8>>,
    /// Which bytes of `held` are already known to be covered by a secret.
    held_mask: Vec<bool>,
}

impl std::fmt::Debug for Scrubber {
    // Never print secrets or held bytes, which may be a secret prefix.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrubber")
            .field("secrets", &self.secrets.len())
            .field("held", &self.held.len())
            .finish()
    }
}

impl Scrubber {
    /// The secrets this scrubber replaces (for trailers, scrubbed whole).
    pub fn secrets(&self) -> &[Bytes] {
        &self.secrets
    }

    /// `secrets`: byte strings to replace (non-empty ones only; may be several, different lengths).
    pub fn new(secrets: Vec<Bytes>) -> Scrubber {
        let secrets = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        Scrubber {
            secrets,
            held: Zeroizing::new(Vec::new()),
            held_mask: Vec::new(),
        }
    }

    /// Feeds one chunk; returns the bytes safe to emit now (may be empty). Holds back at most (longest secret - 1) bytes that could be the start of a secret.
    pub fn push(&mut self, chunk: Bytes) -> Bytes {
        let matcher = Matcher::new(&self.secrets);
        // Fast path: nothing pending and no byte that could begin a secret, so
        // the chunk passes through without a copy.
        if self.held.is_empty() && !chunk.iter().any(|&b| matcher.may_start(b)) {
            return chunk;
        }
        let mut raw = Zeroizing::new(Vec::with_capacity(self.held.len().saturating_add(chunk.len())));
        raw.extend_from_slice(&self.held);
        raw.extend_from_slice(&chunk);
        let mut mask = std::mem::take(&mut self.held_mask);
        mask.resize(raw.len(), false);
        matcher.for_each_match(&raw, |start, len| mark(&mut mask, start, len));
        // Everything before the first possible partial secret is final: any
        // occurrence covering it either lies fully in `raw` (found above) or
        // would make an earlier index a partial match, contradicting minimality.
        let cut = matcher.hold_start(&raw).min(raw.len());
        let (ready, rest) = raw.split_at(cut);
        let (ready_mask, rest_mask) = mask.split_at(cut.min(mask.len()));
        let out = apply(ready, ready_mask);
        self.held = Zeroizing::new(rest.to_vec());
        self.held_mask = rest_mask.to_vec();
        Bytes::from(out)
    }

    /// End of stream: returns the held-back rest (scrubbed).
    pub fn finish(&mut self) -> Bytes {
        // No more input can complete a partial secret, and complete ones inside
        // the held bytes were already marked when they arrived.
        let out = apply(&self.held, &self.held_mask);
        self.held = Zeroizing::new(Vec::new());
        self.held_mask.clear();
        Bytes::from(out)
    }
}

/// Replaces secrets in one complete byte string (used for header values and buffered bodies); returns None when nothing matched (no allocation).
pub fn scrub_all(input: &[u8], secrets: &[Bytes]) -> Option<Vec<u8>> {
    let matcher = Matcher::new(secrets);
    // Cheap pre-check; the output copy below is made only on the first hit.
    if !input.iter().any(|&b| matcher.may_start(b)) {
        return None;
    }
    let mut out: Option<Vec<u8>> = None;
    matcher.for_each_match(input, |start, len| {
        let buf = out.get_or_insert_with(|| input.to_vec());
        let end = start.saturating_add(len).min(buf.len());
        if let Some(span) = buf.get_mut(start..end) {
            span.fill(MASK);
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secrets(list: &[&str]) -> Vec<Bytes> {
        list.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
    }

    /// Streams `chunks` through a fresh scrubber and checks the hold-back bound.
    fn stream(list: &[&str], chunks: &[&[u8]]) -> Vec<u8> {
        let mut sc = Scrubber::new(secrets(list));
        let max = list.iter().map(|s| s.len()).max().unwrap_or(0);
        let (mut out, mut fed) = (Vec::new(), 0);
        for c in chunks {
            fed += c.len();
            out.extend_from_slice(&sc.push(Bytes::copy_from_slice(c)));
            assert!(fed - out.len() <= max.saturating_sub(1), "held too much");
        }
        out.extend_from_slice(&sc.finish());
        out
    }

    const TABLE: &[(&str, &[&str], &str, &str)] = &[
        ("no secret", &["sk-123"], "hello world", "hello world"),
        ("no secrets at all", &[], "hello", "hello"),
        ("empty secret ignored", &["", "ab"], "xaby", "x**y"),
        ("one in middle", &["sk-123"], "key=sk-123;", "key=******;"),
        ("at the very end", &["sk-123"], "key=sk-123", "key=******"),
        ("at the very start", &["sk-123"], "sk-123!", "******!"),
        ("whole input", &["abc"], "abc", "***"),
        ("twice", &["ab"], "abxab", "**x**"),
        ("adjacent", &["ab"], "abab", "****"),
        ("overlapping prefix", &["aab"], "aaab", "a***"),
        ("self-overlap", &["aba"], "ababa", "*****"),
        (
            "several lengths",
            &["tok", "secret-42"],
            "tok secret-42 x",
            "*** ********* x",
        ),
        ("nested secrets", &["abc", "b"], "abcb", "****"),
        ("chained overlap", &["abc", "bcdef"], "abcdefg", "******g"),
        ("prefix only at end", &["secret"], "my secr", "my secr"),
        ("duplicate secrets", &["ab", "ab"], "ab", "**"),
    ];

    #[test]
    fn scrub_all_table() {
        for (name, list, input, want) in TABLE {
            let got = scrub_all(input.as_bytes(), &secrets(list));
            let expect = (input != want).then(|| want.as_bytes().to_vec());
            assert_eq!(got, expect, "case {name}");
        }
    }

    #[test]
    fn stream_table_whole_and_every_split() {
        for (name, list, input, want) in TABLE {
            let b = input.as_bytes();
            assert_eq!(stream(list, &[b]), want.as_bytes(), "case {name} whole");
            for i in 0..=b.len() {
                let (x, y) = b.split_at(i);
                assert_eq!(stream(list, &[x, y]), want.as_bytes(), "{name} @{i}");
                for j in i..=b.len() {
                    let (y1, y2) = y.split_at(j - i);
                    let got = stream(list, &[x, y1, y2]);
                    assert_eq!(got, want.as_bytes(), "{name} @{i},{j}");
                }
            }
        }
    }

    #[test]
    fn byte_at_a_time() {
        let input = b"xx sk-live-abc yy sk-live-abc";
        let chunks: Vec<&[u8]> = input.chunks(1).collect();
        let got = stream(&["sk-live-abc"], &chunks);
        assert_eq!(got, b"xx *********** yy ***********".to_vec());
    }

    #[test]
    fn clean_chunk_passes_through_without_copy() {
        let mut sc = Scrubber::new(secrets(&["zz"]));
        let chunk = Bytes::from_static(b"hello");
        let out = sc.push(chunk.clone());
        assert_eq!(out.as_ptr(), chunk.as_ptr());
        assert!(sc.finish().is_empty());
    }

    #[test]
    fn debug_hides_bytes() {
        let mut sc = Scrubber::new(secrets(&["topsecret"]));
        let _ = sc.push(Bytes::from_static(b"..tops"));
        let dbg = format!("{sc:?}");
        assert!(!dbg.contains("top"), "{dbg}");
    }

    fn case() -> impl Strategy<Value = (Vec<Vec<u8>>, Vec<u8>, Vec<usize>)> {
        let alpha = prop::sample::select(b"abc-".to_vec());
        let secret = prop::collection::vec(alpha.clone(), 1..6);
        let piece = prop::collection::vec(alpha, 0..8);
        (
            prop::collection::vec(secret, 1..4),
            prop::collection::vec((piece, any::<prop::sample::Index>()), 0..6),
            prop::collection::vec(0usize..10, 0..8),
        )
            .prop_map(|(secs, pieces, cuts)| {
                // Interleave random filler with injected copies of the secrets.
                let mut input = Vec::new();
                for (p, idx) in pieces {
                    input.extend_from_slice(&p);
                    input.extend_from_slice(idx.get::<Vec<u8>>(&secs));
                }
                (secs, input, cuts)
            })
    }

    proptest! {
        #[test]
        fn random_chunking_matches_scrub_all((secs, input, cuts) in case()) {
            let zs: Vec<Bytes> = secs.iter().cloned().map(Bytes::from).collect();
            let strs: Vec<&str> = secs.iter().map(|s| std::str::from_utf8(s).unwrap_or_default()).collect();
            let mut chunks: Vec<&[u8]> = Vec::new();
            let mut rest = input.as_slice();
            for c in cuts {
                let (a, b) = rest.split_at(c.min(rest.len()));
                chunks.push(a);
                rest = b;
            }
            chunks.push(rest);
            let out = stream(&strs, &chunks);
            let whole = scrub_all(&input, &zs).unwrap_or_else(|| input.clone());
            prop_assert_eq!(out.len(), input.len());
            prop_assert_eq!(&out, &whole);
            for s in &secs {
                prop_assert!(!out.windows(s.len()).any(|w| w == s.as_slice()));
            }
        }
    }
}
