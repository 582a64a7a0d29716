#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Differential test of path handling: a few thousand mutated paths (fixed
//! seed) through the real proxy; for every one it forwards, the path the
//! upstream received, read the way Tomcat/Spring, Jetty and nginx read it
//! (models below), must still match the route the proxy matched. A path
//! whose reading differs is how `..;` reached the key-carrying upstream.

mod common;

use std::sync::Arc;

use common::*;
use http::Method;

const HOST: &str = "api.diff.test";
const RUNS: usize = 3000;
const SEED: u64 = 0x5eed_0008_dead_beef;

const ROUTES: &[&str] = &[
    "/v1/orders/*",
    "/v1/public/**",
    "/v1/x/*/items",
    "/v1/exact",
    "/api/*/v2/**",
];
const BASES: &[&str] = &[
    "/v1/orders/7",
    "/v1/public/a/b",
    "/v1/x/1/items",
    "/v1/exact",
    "/api/k/v2/z",
];
/// Spellings of dots, parameters, separators and escapes that servers read differently.
const TOKENS: &[&str] = &[
    "..",
    ".",
    "..;",
    ".;",
    ";x",
    ";",
    "%2e%2e",
    "%2E%2e;",
    ".%2e",
    "%2e",
    "%2e;jsessionid=1",
    "..%3b",
    "%3B",
    "%252e%252e",
    "%25",
    "%2f",
    "..%2f",
    "%5c",
    "%5C..",
    "%00",
    "%c0%ae",
    "%ef%bc%8e",
    "...",
    "admin",
    "a;b=c",
    "%41",
    "%7e",
    "~",
    "x%20y",
    "%2e%2e%2f",
    "..%252f",
    ".;/..;",
    "",
    "items",
    "v2",
    "orders",
];

/// xorshift64*: a tiny PRNG, so a failure replays from `SEED`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

/// A base path with one to three mutations: a token inserted as a segment or
/// replacing one, a parameter on a segment, a doubled slash; escapes in random case.
fn mutate(rng: &mut Rng) -> String {
    let mut segs: Vec<String> = rng.pick(BASES).split('/').skip(1).map(str::to_owned).collect();
    for _ in 0..=rng.below(3) {
        let at = rng.below(segs.len() + 1);
        let token = rng.pick(TOKENS).to_owned();
        match rng.below(5) {
            0 | 1 => segs.insert(at, token),
            2 if at < segs.len() => segs[at] = token,
            3 if at < segs.len() => segs[at].push_str(&format!(";{}", rng.pick(&["", "x", "jsessionid=1", ".."]))),
            _ => segs.insert(at, String::new()),
        }
    }
    let path = format!("/{}", segs.join("/"));
    // Flip the case of escape hex digits (`%2e` / `%2E`), nothing else.
    let mut out = String::with_capacity(path.len());
    let mut hex_left = 0u8;
    for c in path.chars() {
        let flip = hex_left > 0 && rng.below(2) == 0;
        hex_left = if c == '%' { 2 } else { hex_left.saturating_sub(1) };
        out.push(match (flip, c.is_ascii_uppercase()) {
            (false, _) => c,
            (true, true) => c.to_ascii_lowercase(),
            (true, false) => c.to_ascii_uppercase(),
        });
    }
    out
}

/// Percent-decodes every escape; `None` where a server answers 400 instead
/// (a malformed escape, NUL, or an encoded slash when `slash_ok` is false).
fn decode(p: &str, slash_ok: bool) -> Option<String> {
    let b = p.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            let v = u8::from_str_radix(hex, 16).ok()?;
            if v == 0 || (!slash_ok && (v == b'/' || v == b'\\')) {
                return None;
            }
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Cuts `;` parameters from every segment (servlet containers, Spring).
fn strip_params(p: &str) -> String {
    p.split('/')
        .map(|s| s.split(';').next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("/")
}

/// Merges slashes and resolves dot segments; `None` for `..` above the root (400).
fn resolve(p: &str) -> Option<String> {
    let mut stack: Vec<&str> = Vec::new();
    let segs: Vec<&str> = p.split('/').skip(1).collect();
    for (i, seg) in segs.iter().enumerate() {
        match *seg {
            "" | "." => {}
            ".." => {
                stack.pop()?;
            }
            s => stack.push(s),
        }
        if i + 1 == segs.len() && matches!(*seg, "" | "." | "..") && !stack.is_empty() {
            return Some(format!("/{}/", stack.join("/")));
        }
    }
    Some(format!("/{}", stack.join("/")))
}

/// Tomcat + Spring: parameters cut on the raw path, then decoded (encoded
/// slash refused), backslash read as a separator, then normalised.
fn tomcat(p: &str) -> Option<String> {
    let decoded = decode(&strip_params(p), false)?;
    resolve(&decoded.replace('\\', "/"))
}

/// Jetty-like: decoded first, then parameters cut, then normalised.
fn jetty(p: &str) -> Option<String> {
    resolve(&strip_params(&decode(p, false)?).replace('\\', "/"))
}

/// nginx: every escape decoded (an encoded slash becomes one), slashes merged, dots resolved.
fn nginx(p: &str) -> Option<String> {
    resolve(&decode(p, true)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_paths_match_the_same_route_upstream() {
    let ca = TestCa::new();
    // The upstream answers with the path it received.
    let echo: Handler = Arc::new(|r: &Recorded| Reply::chunks(200, "text/plain", vec![r.target.clone().into_bytes()]));
    let up = Upstream::start_replying(&ca, &[HOST], echo).await;
    let dest = ROUTES.iter().fold(Dest::new("diff", HOST).upstream(&up, &ca), |d, r| {
        d.route(Route::get(&format!("\"{r}\"")))
    });
    let yaml = PolicyBuilder::new().dest(dest).yaml();
    let policy = egress_guard::policy::compile(&yaml).unwrap();
    let dest = policy.find_destination(HOST).unwrap();
    let proxy = Proxy::start(&yaml).await;

    let mut rng = Rng(SEED);
    let mut conn = RawConn::tcp(proxy.addr).await;
    let (mut forwarded, mut with_params) = (0, 0);
    for _ in 0..RUNS {
        let path = mutate(&mut rng);
        let raw = absolute("GET", &format!("http://{HOST}{path}"), &[], b"");
        conn.send(&raw).await;
        let resp = match conn.response().await {
            Ok(r) => r,
            Err(_) => {
                // The proxy (or hyper) closed after a malformed request: go on on a fresh connection.
                conn = RawConn::tcp(proxy.addr).await;
                conn.send(&raw).await;
                conn.response().await.unwrap()
            }
        };
        if resp.status != 200 {
            assert!(resp.status >= 400, "{path:?}: {}", resp.head);
            continue;
        }
        forwarded += 1;
        let got = resp.text();
        with_params += usize::from(got.contains(';'));
        let route = dest
            .find_route(&Method::GET, &got)
            .unwrap_or_else(|| panic!("{path:?} forwarded as {got:?}, which matches no route"));
        for (model, read) in [
            ("tomcat/spring", tomcat(&got)),
            ("jetty", jetty(&got)),
            ("nginx", nginx(&got)),
        ] {
            if let Some(read) = read {
                assert!(
                    route.path.matches(&read),
                    "{path:?} matched route {:?} here, forwarded as {got:?}, which {model} reads as {read:?}",
                    route.path.text
                );
            }
        }
    }
    // Not vacuous: plenty went through, parameters on names included.
    assert!(forwarded > RUNS / 8, "only {forwarded} of {RUNS} forwarded");
    assert!(
        with_params > 20,
        "only {with_params} forwarded paths carried a parameter"
    );
    assert_eq!(up.count(), forwarded);
}

#[test]
fn models_read_the_known_tricks() {
    assert_eq!(tomcat("/v1/public/..;/admin").as_deref(), Some("/v1/admin"));
    assert_eq!(tomcat("/v1/x/%2e%2e;x/admin").as_deref(), Some("/v1/admin"));
    assert_eq!(tomcat("/v1/a\\..\\b").as_deref(), Some("/v1/b"));
    assert_eq!(tomcat("/v1/a%2fb"), None);
    assert_eq!(jetty("/v1/x/..%3b/admin").as_deref(), Some("/v1/admin"));
    assert_eq!(nginx("/v1//a/./b/../c").as_deref(), Some("/v1/a/c"));
    assert_eq!(nginx("/v1/a%2f..%2fb").as_deref(), Some("/v1/b"));
    assert_eq!(nginx("/.."), None);
    assert_eq!(nginx("/v1/a/").as_deref(), Some("/v1/a/"));
}
