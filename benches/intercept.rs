//! What interception costs, in process, against the recording TLS upstream
//! of the tests: one GET over a fresh intercepted tunnel (CONNECT, handshake
//! with a cached leaf, request) and 100 GETs over one tunnel, against the
//! same through `http://` (a fresh connection, and one keep-alive
//! connection). Prints a Markdown table; `BENCH_N` sets the fresh-connection
//! rounds (default 300).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::intercept::{inside, setup, HOST};
use common::{absolute, raw_request, RawConn};

const ON_ONE_CONNECTION: usize = 100;

fn main() {
    let rounds: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let s = setup().await;
        let inner = raw_request("GET", "/v1/echo", &[("Host", HOST)], b"");
        let plain = absolute("GET", &format!("http://{HOST}/v1/echo"), &[], b"");
        // Warm-up: the leaf minted, the upstream pool filled.
        for _ in 0..20 {
            ok(&mut inside(&s).await, &inner).await;
            ok(&mut RawConn::tcp(s.proxy.addr).await, &plain).await;
        }
        let mut fresh_tls = Vec::new();
        let mut fresh_http = Vec::new();
        for _ in 0..rounds {
            let t = Instant::now();
            ok(&mut inside(&s).await, &inner).await;
            fresh_tls.push(t.elapsed());
            let t = Instant::now();
            ok(&mut RawConn::tcp(s.proxy.addr).await, &plain).await;
            fresh_http.push(t.elapsed());
        }
        let mut tunnel = inside(&s).await;
        let t = Instant::now();
        for _ in 0..ON_ONE_CONNECTION {
            ok(&mut tunnel, &inner).await;
        }
        let one_tunnel = t.elapsed();
        let mut conn = RawConn::tcp(s.proxy.addr).await;
        let t = Instant::now();
        for _ in 0..ON_ONE_CONNECTION {
            ok(&mut conn, &plain).await;
        }
        let one_http = t.elapsed();
        println!("| what | https:// intercepted | http:// |");
        println!("| --- | ---: | ---: |");
        println!(
            "| 1 GET on a fresh connection (CONNECT + TLS handshake included), median of {rounds} | {} | {} |",
            ms(median(&mut fresh_tls)),
            ms(median(&mut fresh_http))
        );
        println!(
            "| {ON_ONE_CONNECTION} GETs on one connection, total | {} | {} |",
            ms(one_tunnel),
            ms(one_http)
        );
        println!(
            "| per GET on one connection | {} | {} |",
            ms(one_tunnel / ON_ONE_CONNECTION as u32),
            ms(one_http / ON_ONE_CONNECTION as u32)
        );
    });
}

async fn ok(c: &mut RawConn, raw: &[u8]) {
    c.send(raw).await;
    let resp = c.response().await.unwrap();
    assert_eq!(resp.status, 200, "{}", resp.head);
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}
