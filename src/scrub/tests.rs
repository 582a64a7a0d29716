//! Scrubber tables (each covered spelling, streaming at every split) and the
//! invariant-1 property: every covered form of a random secret, embedded in
//! random bytes and cut at random boundaries, comes out masked, same length.

use super::*;
use base64::Engine;
use proptest::prelude::*;

fn forms(list: &[&[u8]]) -> Arc<Forms> {
    Arc::new(Forms::new(list.iter().copied()))
}

/// Streams `chunks` through a fresh scrubber and checks the hold-back bound.
fn stream(forms: &Arc<Forms>, chunks: &[&[u8]]) -> Vec<u8> {
    let mut sc = Scrubber::new(forms.clone());
    let max = forms.max_span();
    let (mut out, mut fed) = (Vec::new(), 0);
    for c in chunks {
        fed += c.len();
        out.extend_from_slice(&sc.push(Bytes::copy_from_slice(c)));
        assert!(fed - out.len() < max.max(1), "held too much");
    }
    out.extend_from_slice(&sc.finish());
    out
}

/// Whole, then at every split into two and three chunks: all must agree with `want`.
fn check_every_split(name: &str, f: &Arc<Forms>, b: &[u8], want: &[u8]) {
    assert_eq!(stream(f, &[b]), want, "case {name} whole");
    for i in 0..=b.len() {
        let (x, y) = b.split_at(i);
        assert_eq!(stream(f, &[x, y]), want, "{name} @{i}");
        for j in i..=b.len() {
            let (y1, y2) = y.split_at(j - i);
            assert_eq!(stream(f, &[x, y1, y2]), want, "{name} @{i},{j}");
        }
    }
}

type Row = (&'static str, &'static [&'static str], &'static str, &'static str);

/// Raw occurrences: positions, overlaps, several secrets.
const RAW: &[Row] = &[
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

/// One secret with `/`, `+`, a space and `é`, in each covered spelling:
/// (name, before, spelling, after); the spelling must come out all `*`.
const KEY: &str = "sk/9+a b=é";
const SPELLED: &[(&str, &str, &str, &str)] = &[
    ("raw", "k=", "sk/9+a b=é", ";"),
    ("json slash as PHP writes it", "\"", r"sk\/9+a b=é", "\""),
    ("json \\u00XX lower", "\"", r"\u0073k\u002f9+a b=\u00e9", "\""),
    ("json \\u00XX upper", "", r"sk\u002F9\u002Ba b\u003D\u00E9", ""),
    ("backslash before punctuation", "", r"sk\/9\+a b\=é", ""),
    ("percent upper", "q=", "sk%2F9%2Ba%20b%3D%C3%A9", "&"),
    ("percent lower, + for space", "q=", "sk%2f9%2ba+b%3d%c3%a9", "&"),
    ("percent every byte", "", "%73%6B%2F%39%2B%61%20%62%3D%C3%A9", ""),
    ("double percent", "", "sk%252F9%252Ba%2520b%253D%25C3%25A9", ""),
    ("mixed spellings in one", "", r"s%6B\/9%2Ba+b\u003d\u00E9", ""),
];

/// Near misses: nothing to mask.
const NOT_KEYS: &[(&str, &str)] = &[
    ("one byte differs", "sk/9+a b=e"),
    ("json of another char", r"sk\/9+a b\u003e"),
    ("percent of another byte", "sk%2E9+a b=é"),
    ("cut short", "sk/9+a b="),
];

#[test]
fn raw_table_whole_and_every_split() {
    for (name, list, input, want) in RAW {
        let list: Vec<&[u8]> = list.iter().map(|s| s.as_bytes()).collect();
        let f = forms(&list);
        let got = scrub_all(input.as_bytes(), &f);
        let expect = (input != want).then(|| want.as_bytes().to_vec());
        assert_eq!(got, expect, "case {name}");
        check_every_split(name, &f, input.as_bytes(), want.as_bytes());
    }
}

#[test]
fn spelled_table_whole_and_every_split() {
    let f = forms(&[KEY.as_bytes()]);
    for (name, before, spelled, after) in SPELLED {
        let input = format!("{before}{spelled}{after}");
        let want = format!("{before}{}{after}", "*".repeat(spelled.len()));
        let got = scrub_all(input.as_bytes(), &f).unwrap_or_else(|| input.as_bytes().to_vec());
        assert_eq!(String::from_utf8_lossy(&got), want, "case {name}");
        check_every_split(name, &f, input.as_bytes(), want.as_bytes());
    }
    for (name, input) in NOT_KEYS {
        assert_eq!(scrub_all(input.as_bytes(), &f), None, "case {name}");
        check_every_split(name, &f, input.as_bytes(), input.as_bytes());
    }
}

#[test]
fn surrogate_pair_escape_of_a_non_bmp_char() {
    let f = forms(&["k-😀-k".as_bytes()]);
    for input in [r#"k-\ud83d\ude00-k"#, r#"k-\uD83D\uDE00-k"#, "k-😀-k"] {
        let got = scrub_all(input.as_bytes(), &f).unwrap_or_default();
        assert!(
            got.iter().all(|&b| b == MASK),
            "{input}: {:?}",
            String::from_utf8_lossy(&got)
        );
    }
}

#[test]
fn base64_at_every_alignment_both_alphabets_with_and_without_padding() {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let key = b"sk_live_\xfb\xff>?9f8e7d6c5b4a";
    let f = forms(&[key]);
    for (alpha, engine) in [
        ("std", &STANDARD),
        ("std nopad", &STANDARD_NO_PAD),
        ("url", &URL_SAFE),
        ("url nopad", &URL_SAFE_NO_PAD),
    ] {
        for prefix in [&b""[..], b"u", b"us"] {
            for suffix in [&b""[..], b":x", b"tail!"] {
                let data = [prefix, key, suffix].concat();
                let enc = engine.encode(&data);
                let input = format!("Basic {enc}\r\n");
                let got = scrub_all(input.as_bytes(), &f).unwrap_or_else(|| input.as_bytes().to_vec());
                let (s, e) = stable_chars(prefix.len(), key.len());
                let region = got.get(6 + s..6 + e).unwrap_or_default();
                let what = format!("{alpha} prefix {} suffix {}", prefix.len(), suffix.len());
                assert!(region.iter().all(|&b| b == MASK), "{what}: {enc} -> {got:?}");
                assert_eq!(got.len(), input.len(), "{what}");
            }
        }
    }
}

/// The base64 characters of `key` placed after `prefix` bytes that depend on the key's bits alone.
fn stable_chars(prefix: usize, key: usize) -> (usize, usize) {
    ((8 * prefix).div_ceil(6), 8 * (prefix + key) / 6)
}

#[test]
fn byte_at_a_time() {
    let input = b"xx sk-live-abc yy sk%2Dlive%2dabc";
    let chunks: Vec<&[u8]> = input.chunks(1).collect();
    let got = stream(&forms(&[b"sk-live-abc"]), &chunks);
    assert_eq!(got, b"xx *********** yy ***************".to_vec());
}

#[test]
fn clean_chunk_passes_through_without_copy() {
    let mut sc = Scrubber::new(forms(&[b"zz"]));
    let chunk = Bytes::from_static(b"world");
    let out = sc.push(chunk.clone());
    assert_eq!(out.as_ptr(), chunk.as_ptr());
    assert!(sc.finish().is_empty());
}

#[test]
fn debug_hides_bytes() {
    let f = forms(&[b"topsecret"]);
    let mut sc = Scrubber::new(f.clone());
    let _ = sc.push(Bytes::from_static(b"..tops"));
    for dbg in [format!("{sc:?}"), format!("{f:?}")] {
        assert!(!dbg.contains("top") && !dbg.contains("dG9w"), "{dbg}");
    }
}

/// A key written in one spelling (a proptest strategy's output), and the
/// span of the result that must come out masked.
#[derive(Debug, Clone)]
enum Spell {
    Raw,
    /// Per character: literal or `\u`-escaped (random case); `/` may be `\/`.
    Json(Vec<u8>),
    /// Per byte: literal or `%HH` (random case); space as `+` or `%20`.
    Percent(Vec<u8>),
    DoublePercent,
    /// Alphabet (url-safe or not), prefix length 0..3, suffix, padding.
    Base64(bool, Vec<u8>, Vec<u8>, bool),
}

fn hex(b: u8, upper: bool) -> String {
    if upper {
        format!("{b:02X}")
    } else {
        format!("{b:02x}")
    }
}

/// The spelled bytes and the span (within them) that must be masked.
fn spell(key: &[u8], how: &Spell) -> (Vec<u8>, usize, usize) {
    let pick = |seeds: &[u8], i: usize| seeds.get(i % seeds.len().max(1)).copied().unwrap_or(0);
    let out: Vec<u8> = match how {
        Spell::Raw => key.to_vec(),
        Spell::Json(seeds) => {
            let text = String::from_utf8_lossy(key);
            let mut o = String::new();
            for (i, c) in text.chars().enumerate() {
                let s = pick(seeds, i);
                let mut units = [0u16; 2];
                match (c, s % 3) {
                    ('/', 0) => o.push_str("\\/"),
                    ('"' | '\\', 0 | 2) => o.extend(['\\', c]),
                    (_, 1) | ('"' | '\\', _) => {
                        for u in c.encode_utf16(&mut units).iter() {
                            let [h, l] = u.to_be_bytes();
                            o.push_str(&format!("\\u{}{}", hex(h, s & 4 != 0), hex(l, s & 8 != 0)));
                        }
                    }
                    _ => o.push(c),
                }
            }
            o.into_bytes()
        }
        Spell::Percent(seeds) => {
            let mut o = String::new();
            for (i, &b) in key.iter().enumerate() {
                let s = pick(seeds, i);
                match (b, s % 3) {
                    (b' ', 0) => o.push('+'),
                    (_, 1) if b.is_ascii_alphanumeric() => o.push(char::from(b)),
                    _ => o.push_str(&format!("%{}", hex(b, s & 4 != 0))),
                }
            }
            o.into_bytes()
        }
        Spell::DoublePercent => key.iter().flat_map(|b| format!("%25{b:02X}").into_bytes()).collect(),
        Spell::Base64(url, prefix, suffix, pad) => {
            use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
            let data = [prefix.as_slice(), key, suffix.as_slice()].concat();
            let engine = match (url, pad) {
                (false, true) => &STANDARD,
                (false, false) => &STANDARD_NO_PAD,
                (true, true) => &URL_SAFE,
                (true, false) => &URL_SAFE_NO_PAD,
            };
            let enc = engine.encode(&data).into_bytes();
            let (s, e) = stable_chars(prefix.len(), key.len());
            return (enc, s, e);
        }
    };
    let n = out.len();
    (out, 0, n)
}

fn spell_strategy() -> impl Strategy<Value = Spell> {
    let seeds = || prop::collection::vec(any::<u8>(), 1..8);
    let bytes = |n| prop::collection::vec(any::<u8>(), n);
    prop_oneof![
        Just(Spell::Raw),
        seeds().prop_map(Spell::Json),
        seeds().prop_map(Spell::Percent),
        Just(Spell::DoublePercent),
        (any::<bool>(), bytes(0..3), bytes(0..4), any::<bool>())
            .prop_map(|(url, pre, suf, pad)| Spell::Base64(url, pre, suf, pad)),
    ]
}

/// Keys from characters real keys use plus the ones each encoding changes.
fn key_strategy() -> impl Strategy<Value = Vec<u8>> {
    let chars = prop::sample::select(vec![
        "a", "Z", "0", "9", "-", "_", ".", "~", "/", "+", "=", " ", "%", "\\", "\"", "é", "€",
    ]);
    prop::collection::vec(chars, 6..20).prop_map(|cs| cs.concat().into_bytes())
}

fn filler() -> impl Strategy<Value = Vec<u8>> {
    let b = prop::sample::select(b"aZ09%\\u+/=\" {}:x2F".to_vec());
    prop::collection::vec(b, 0..12)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn every_covered_form_is_masked_at_any_chunking(
        key in key_strategy(),
        spells in prop::collection::vec((filler(), spell_strategy()), 1..4),
        tail in filler(),
        cuts in prop::collection::vec(0usize..40, 0..8),
    ) {
        let mut input = Vec::new();
        let mut must = Vec::new();
        for (fill, how) in &spells {
            input.extend_from_slice(fill);
            let (spelled, s, e) = spell(&key, how);
            must.push((input.len() + s, input.len() + e, format!("{how:?}")));
            input.extend_from_slice(&spelled);
        }
        input.extend_from_slice(&tail);
        let f = forms(&[&key]);
        let mut chunks: Vec<&[u8]> = Vec::new();
        let mut rest = input.as_slice();
        for c in cuts {
            let (a, b) = rest.split_at(c.min(rest.len()));
            chunks.push(a);
            rest = b;
        }
        chunks.push(rest);
        let out = stream(&f, &chunks);
        prop_assert_eq!(out.len(), input.len());
        let whole = scrub_all(&input, &f).unwrap_or_else(|| input.clone());
        prop_assert_eq!(&out, &whole, "streaming and whole disagree");
        for (s, e, how) in must {
            let span = out.get(s..e).unwrap_or_default();
            prop_assert!(span.iter().all(|&b| b == MASK), "{} not masked: {:?}", how, String::from_utf8_lossy(&out));
        }
        for (o, i) in out.iter().zip(&input) {
            prop_assert!(o == i || *o == MASK, "a byte changed into something else than the mask");
        }
    }
}
