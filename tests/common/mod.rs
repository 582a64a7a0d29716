//! The test harness shared by the integration tests. One module per part:
//! `ca` (test CA, secret files), `upstream` (recording TLS upstream),
//! `proxy` (the proxy in process), `raw` (raw HTTP/1.1 client), `daemon`
//! (the real binary as a child process), `clients` (curl, php), `metrics`
//! (the one `/metrics` parser) and `policy` (`PolicyBuilder`, the YAML).
//!
//! Every wait is bounded by a deadline; nothing here sleeps to "let things
//! settle". All traffic stays on loopback.
#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

pub mod ca;
pub mod clients;
pub mod daemon;
pub mod intercept;
pub mod metrics;
pub mod policy;
pub mod proxy;
pub mod raw;
pub mod shipper;
pub mod upstream;

pub use ca::*;
pub use clients::*;
pub use daemon::{Daemon, Spawn};
pub use metrics::Exposition;
pub use policy::{Dest, PolicyBuilder, Route};
pub use proxy::*;
pub use raw::*;
pub use upstream::*;

use std::time::{Duration, Instant};

/// How long any single wait in a test may take before it counts as a failure.
pub const DEADLINE: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------
// Waiting
// ---------------------------------------------------------------------------

/// Polls `cond` until it holds or `deadline` passes; returns whether it held.
pub async fn wait_until(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::task::yield_now().await;
    }
}

// ---------------------------------------------------------------------------
// Refusal checks
// ---------------------------------------------------------------------------

/// Asserts the SPEC's refusal shape: status, reason header, JSON body with
/// `error` and `request_id` (and at most a `hint`), nothing internal.
pub fn assert_refusal(resp: &RawResponse, status: u16, reason: &str, what: &str) {
    assert_eq!(
        resp.status,
        status,
        "{what}: status; answer:\n{}\n{}",
        resp.head,
        resp.text()
    );
    assert_eq!(
        resp.reason(),
        Some(reason),
        "{what}: x-egress-guard-reason; answer:\n{}\n{}",
        resp.head,
        resp.text()
    );
    let v = resp.json();
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("{what}: refusal body is not an object: {v}"));
    assert_eq!(
        obj.get("error").and_then(|e| e.as_str()),
        Some(reason),
        "{what}: body error: {v}"
    );
    let id = obj.get("request_id").and_then(|e| e.as_str()).unwrap_or_default();
    assert!(!id.is_empty(), "{what}: request_id missing or empty: {v}");
    for k in obj.keys() {
        assert!(
            ["error", "request_id", "hint"].contains(&k.as_str()),
            "{what}: unexpected key {k:?} in refusal {v}"
        );
    }
    let text = resp.text().to_ascii_lowercase();
    for internal in [
        "127.0.0.1",
        "/tmp",
        "error:",
        "rustls",
        "certificate",
        "os error",
        "panicked",
        ".pem",
        "hyper",
        "connection refused",
    ] {
        assert!(
            !text.contains(internal),
            "{what}: refusal tells something internal ({internal:?}): {text}"
        );
    }
}
