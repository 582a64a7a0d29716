#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]
//! Answers, hardened (issue 8, classes 6 and 15; invariants 1 and 5): a TLS
//! upstream echoes the key the proxy injected in every spelling the scrubber
//! covers, in the body and in a header, plain and content-coded; codings the
//! proxy cannot undo are refused with a 502 before the head; a body that does
//! not decode at its start is a 502 too, one that breaks later is cut, and
//! the proxy serves on.

mod common;

use std::sync::Arc;

use base64::Engine;
use common::{
    absolute, assert_refusal, curl, describe, secret_file, Dest, PolicyBuilder, Proxy, Recorded, Reply, TestCa,
    Upstream,
};

const HOST: &str = "api.shipper.test";
/// Has the characters each encoding changes: `/`, `+`, `=`, `~`.
const KEY: &str = "sk_live/9f8e+7d6c=5b4a~39281706f5e4d3c2b1a0";

struct Fx {
    _ca: TestCa,
    up: Upstream,
    _secret: tempfile::NamedTempFile,
    proxy: Proxy,
}

impl Fx {
    /// The proxy in front of an upstream answering with `handler`; `h2` offers HTTP/2 too.
    async fn new(h2: bool, handler: common::Handler) -> Fx {
        let ca = TestCa::new();
        let up = Upstream::start_with(ca.server_config(&[HOST], h2), handler).await;
        let secret = secret_file(KEY);
        let proxy = Proxy::start_policy(
            &PolicyBuilder::new()
                .defaults("request_timeout_ms", 5000)
                .defaults("connect_timeout_ms", 2000)
                .dest(
                    Dest::new("shipper", HOST)
                        .upstream(&up, &ca)
                        .credential("X-API-KEY", secret.path()),
                ),
        )
        .await;
        Fx {
            _ca: ca,
            up,
            _secret: secret,
            proxy,
        }
    }

    async fn get(&self, path: &str) -> common::RawResponse {
        self.proxy
            .send(&absolute("GET", &format!("http://{HOST}{path}"), &[], b""))
            .await
    }

    /// Refusals the audit recorded for `reason`, read off `/metrics`.
    async fn refusals(&self, reason: &str) -> f64 {
        let m = self.proxy.metrics().await;
        m.sum(
            "egress_guard_requests_total",
            &[("outcome", "refuse"), ("reason", reason)],
        )
    }
}

/// A spelling of the key, and the span of it that must come out masked.
type Spelled = (String, usize, usize);

fn whole(s: String) -> Spelled {
    let n = s.len();
    (s, 0, n)
}

fn pct(b: u8, upper: bool) -> String {
    if upper {
        format!("%{b:02X}")
    } else {
        format!("%{b:02x}")
    }
}

/// PHP's rawurlencode: unreserved characters stay.
fn rawurlencode(k: &str, upper: bool) -> String {
    k.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(b).to_string(),
            _ => pct(b, upper),
        })
        .collect()
}

/// Base64 of `prefix`, key, `suffix`: the characters of the key's own bits must be masked.
fn b64(engine: &base64::engine::GeneralPurpose, prefix: &str, k: &str, suffix: &str) -> Spelled {
    let enc = engine.encode(format!("{prefix}{k}{suffix}"));
    let from = (8 * prefix.len()).div_ceil(6);
    let to = 8 * (prefix.len() + k.len()) / 6;
    (enc, from, to)
}

/// Every spelling the scrubber covers, named; each a function of the key the upstream saw.
/// How one table row spells the key.
type Speller = Box<dyn Fn(&str) -> Spelled + Send + Sync>;

fn spellings() -> Vec<(&'static str, Speller)> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    vec![
        ("raw", Box::new(|k| whole(k.to_owned()))),
        (
            "json as PHP writes it (\\/)",
            Box::new(|k| whole(k.replace('/', "\\/"))),
        ),
        (
            "json \\u00xx every char",
            Box::new(|k| whole(k.chars().map(|c| format!("\\u{:04x}", c as u32)).collect())),
        ),
        (
            "json \\u00XX upper, mixed with literals",
            Box::new(|k| {
                let s = k.chars().enumerate().map(|(i, c)| match i % 2 {
                    0 => format!("\\u{:04X}", c as u32),
                    _ => c.to_string(),
                });
                whole(s.collect())
            }),
        ),
        (
            "percent upper (rawurlencode)",
            Box::new(|k| whole(rawurlencode(k, true))),
        ),
        ("percent lower", Box::new(|k| whole(rawurlencode(k, false)))),
        (
            "percent every byte",
            Box::new(|k| whole(k.bytes().map(|b| pct(b, true)).collect())),
        ),
        (
            "percent twice",
            Box::new(|k| whole(rawurlencode(&rawurlencode(k, true), true))),
        ),
        ("base64 alone, padded", Box::new(|k| b64(&STANDARD, "", k, ""))),
        (
            "base64 after 1 byte, unpadded",
            Box::new(|k| b64(&STANDARD_NO_PAD, "u", k, "")),
        ),
        (
            "base64 after 2 bytes, more after",
            Box::new(|k| b64(&STANDARD, "us", k, "!x")),
        ),
        (
            "base64 of user:key (Basic)",
            Box::new(|k| b64(&STANDARD, "shop:", k, "")),
        ),
        (
            "base64url after 1 byte, padded",
            Box::new(|k| b64(&URL_SAFE, "u", k, "?")),
        ),
        (
            "base64url alone, unpadded",
            Box::new(|k| b64(&URL_SAFE_NO_PAD, "", k, "")),
        ),
    ]
}

fn key_of(r: &Recorded) -> String {
    r.header("x-api-key").unwrap_or_default()
}

fn echo_body(spelled: &str) -> String {
    format!("{{\"echo\":\"{spelled}\",\"n\":1}}")
}

/// `got` is `want` with `[from, to)` of the spelling at `at` all `*`, and nothing else changed.
fn assert_masked(what: &str, got: &[u8], want: &[u8], at: usize, from: usize, to: usize) {
    let shown = String::from_utf8_lossy(got);
    assert_eq!(got.len(), want.len(), "{what}: length changed: {shown}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if (at + from..at + to).contains(&i) {
            assert_eq!(*g, b'*', "{what}: byte {i} of the key's spelling not masked: {shown}");
        } else {
            assert!(g == w || *g == b'*', "{what}: byte {i} changed: {shown}");
        }
    }
    assert!(!shown.contains(KEY), "{what}: the raw key: {shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_covered_spelling_of_the_key_is_masked_in_body_and_header() {
    let handler: common::Handler = Arc::new(|r: &Recorded| {
        let i: usize = r.path().rsplit('/').next().and_then(|s| s.parse().ok()).unwrap_or(0);
        let (spelled, _, _) = spellings().get(i).map(|(_, f)| f(&key_of(r))).unwrap_or_default();
        Reply::json(200, &echo_body(&spelled)).header("x-echo", &spelled)
    });
    let fx = Fx::new(true, handler).await;
    for (i, (name, spell)) in spellings().iter().enumerate() {
        let resp = fx.get(&format!("/spell/{i}")).await;
        let seen = fx.up.wait_for(i + 1).await;
        assert_eq!(key_of(&seen[i]), KEY, "{name}: positive control: the key was injected");
        assert_eq!(resp.status, 200, "{name}: {}", resp.text());
        let (spelled, from, to) = spell(KEY);
        let at = echo_body("").find("\",").unwrap();
        assert_masked(name, &resp.body, echo_body(&spelled).as_bytes(), at, from, to);
        let header = resp.header("x-echo").unwrap_or_default();
        assert_masked(
            &format!("{name} (header)"),
            header.as_bytes(),
            spelled.as_bytes(),
            0,
            from,
            to,
        );
    }
}

/// Content codings: (name, content-encoding headers, transfer-encoding, body coder);
/// rows named "(h1)" need an HTTP/1.1 upstream (h2 has no transfer codings).
type CodingRow = (
    &'static str,
    &'static [&'static str],
    Option<&'static str>,
    fn(&[u8]) -> Vec<u8>,
);

fn gzip(b: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn zlib(b: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

const DECODED: &[CodingRow] = &[
    ("gzip", &["gzip"], None, gzip),
    ("x-gzip", &["x-gzip"], None, gzip),
    ("deflate", &["deflate"], None, zlib),
    ("identity, then gzip: two headers", &["identity", "gzip"], None, gzip),
    ("identity, gzip: one list", &["identity, gzip"], None, gzip),
    ("gzip, upper case", &["GZIP"], None, gzip),
    ("transfer-encoding gzip (h1)", &[], Some("gzip"), gzip),
];

const REFUSED: &[CodingRow] = &[
    ("gzip, gzip stacked", &["gzip, gzip"], None, |b| gzip(&gzip(b))),
    ("gzip then deflate headers", &["gzip", "deflate"], None, |b| {
        zlib(&gzip(b))
    }),
    ("br", &["br"], None, |b| b.to_vec()),
    ("gzip labelled deflate", &["deflate"], None, gzip),
    ("plain text labelled gzip", &["gzip"], None, |b| b.to_vec()),
    ("gzip and transfer-encoding gzip (h1)", &["gzip"], Some("gzip"), |b| {
        gzip(&gzip(b))
    }),
];

fn coded_handler(rows: &'static [CodingRow]) -> common::Handler {
    Arc::new(move |r: &Recorded| {
        let i: usize = r.path().rsplit('/').next().and_then(|s| s.parse().ok()).unwrap_or(0);
        let (_, ce, te, code) = rows[i];
        // The key in one JSON-escaped and one raw spelling, inside the coding.
        let key = key_of(r);
        let plain = format!("{{\"echo\":\"{key}\",\"php\":\"{}\"}}", key.replace('/', "\\/"));
        let mut reply = Reply::chunks(200, "application/json", vec![code(plain.as_bytes())]);
        for v in ce {
            reply = reply.header("content-encoding", v);
        }
        if let Some(te) = te {
            reply = reply.header("transfer-encoding", te);
        }
        reply
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coded_answers_are_decoded_and_scrubbed_or_refused_before_the_head() {
    let php = KEY.replace('/', "\\/");
    let want = format!(
        "{{\"echo\":\"{}\",\"php\":\"{}\"}}",
        "*".repeat(KEY.len()),
        "*".repeat(php.len())
    );
    for h2 in [false, true] {
        let fx = Fx::new(h2, coded_handler(DECODED)).await;
        for (i, (name, ..)) in DECODED.iter().enumerate() {
            if h2 && name.contains("(h1)") {
                continue;
            }
            let resp = fx.get(&format!("/decoded/{i}")).await;
            let what = format!("{name} (h2 offered: {h2})");
            assert_eq!(resp.status, 200, "{what}: {}", resp.head);
            assert_eq!(resp.header("content-encoding"), None, "{what}: the coding was undone");
            assert_eq!(resp.text(), want, "{what}");
        }
        let fx = Fx::new(h2, coded_handler(REFUSED)).await;
        let mut refused = 0.0;
        for (i, (name, ..)) in REFUSED.iter().enumerate() {
            if h2 && name.contains("(h1)") {
                continue;
            }
            let resp = fx.get(&format!("/refused/{i}")).await;
            let what = format!("{name} (h2 offered: {h2})");
            assert_refusal(&resp, 502, "upstream_unavailable", &what);
            assert!(!resp.text().contains("sk_live"), "{what}");
            refused += 1.0;
        }
        assert_eq!(
            fx.refusals("upstream_unavailable").await,
            refused,
            "each refusal has its audit line"
        );
    }
}

/// 1 MiB of JSON lines, gzipped: the first half of it decodes to far more than one step.
fn long_gzip() -> Vec<u8> {
    let text: String = (0..20_000)
        .map(|i| format!("{{\"line\":{i},\"v\":\"{}\"}}\n", i * 7919))
        .collect();
    gzip(text.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_at_once_is_a_502_and_broken_later_is_a_cut_then_service_goes_on() {
    let handler: common::Handler = Arc::new(|r: &Recorded| {
        let gz = long_gzip();
        match r.path() {
            "/labelled-deflate" => {
                Reply::chunks(200, "application/json", vec![gzip(b"{\"ok\":1}")]).header("content-encoding", "deflate")
            }
            "/broken-later" => {
                let half = gz[..gz.len() / 2].to_vec();
                Reply::chunks(200, "application/json", vec![half, vec![0xff; 64]]).header("content-encoding", "gzip")
            }
            _ => Reply::gzip(200, b"{\"ok\":true}", 2),
        }
    });
    let fx = Fx::new(true, handler).await;
    let proxy = fx.proxy.url();
    let url = |p: &str| format!("http://{HOST}{p}");
    let out = curl(&["-x", &proxy, "-w", "\n%{http_code}", &url("/labelled-deflate")]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "curl got no answer: {}", describe(&out));
    assert!(text.ends_with("\n502"), "{}", describe(&out));
    let v: serde_json::Value = serde_json::from_str(text.trim_end_matches("\n502")).unwrap();
    assert_eq!(v["error"], "upstream_unavailable", "{v}");
    assert_eq!(
        fx.refusals("upstream_unavailable").await,
        1.0,
        "the audit line records it"
    );

    let out = curl(&[
        "-x",
        &proxy,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &url("/broken-later"),
    ])
    .await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "{}", describe(&out));
    assert!(
        matches!(out.status.code(), Some(18 | 56)),
        "a body broken after its start must reach curl as incomplete: {}",
        describe(&out)
    );

    let out = curl(&["-x", &proxy, "-w", "\n%{http_code}", &url("/fine")]).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "{\"ok\":true}\n200");
}
