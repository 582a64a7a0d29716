//! The one audit line each request gets: who asked for what, what the policy
//! decided and why, which field *names* were removed, bytes and latency.
//! It never holds a value, a query string or a key.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::answer::Reason;

/// A request's audit record, filled in as the request goes and written once.
#[derive(Debug)]
pub struct Audit {
    pub request_id: String,
    pub generation: u64,
    pub policy_hash: String,
    pub destination: Option<String>,
    /// The requested host when no destination matched (operators need to see
    /// what a plugin tried to reach).
    pub host: Option<String>,
    pub method: String,
    pub path: String,
    pub decision: &'static str,
    pub reason: Option<Reason>,
    pub would_refuse: Option<Reason>,
    pub status: u16,
    pub removed: Vec<String>,
    pub client_credentials: usize,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub upgraded: bool,
    pub complete: bool,
    pub started: Instant,
    emitted: bool,
}

impl Audit {
    pub fn new(generation: u64, policy_hash: &str, method: &str) -> Audit {
        Audit {
            request_id: next_request_id(),
            generation,
            policy_hash: policy_hash.to_owned(),
            destination: None,
            host: None,
            method: method.to_owned(),
            path: String::new(),
            decision: "refuse",
            reason: None,
            would_refuse: None,
            status: 0,
            removed: Vec::new(),
            client_credentials: 0,
            bytes_in: 0,
            bytes_out: 0,
            upgraded: false,
            complete: true,
            started: Instant::now(),
            emitted: false,
        }
    }

    /// Writes the line; a second call does nothing.
    pub fn emit(&mut self) {
        if std::mem::replace(&mut self.emitted, true) {
            return;
        }
        let latency_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let removed = self.removed.join(",");
        tracing::info!(
            target: "egress_guard::audit",
            request_id = %self.request_id,
            policy_generation = self.generation,
            policy_hash = %self.policy_hash,
            destination = self.destination.as_deref().unwrap_or("-"),
            host = self.host.as_deref().unwrap_or("-"),
            method = %self.method,
            path = %self.path,
            decision = self.decision,
            reason = self.reason.map_or("-", Reason::code),
            would_refuse = self.would_refuse.map_or("-", Reason::code),
            status = self.status,
            removed_fields = %removed,
            client_credentials = self.client_credentials,
            bytes_in = self.bytes_in,
            bytes_out = self.bytes_out,
            upgraded = self.upgraded,
            complete = self.complete,
            latency_ms = (latency_ms * 1000.0).round() / 1000.0,
            "request"
        );
    }
}

impl Drop for Audit {
    fn drop(&mut self) {
        // Every request gets its line, even one dropped on an unexpected path.
        self.emit();
    }
}

/// Process-unique, sortable request ids: a start stamp and a counter.
fn next_request_id() -> String {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = SEED.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        (nanos ^ u64::from(std::process::id()).rotate_left(32)) & 0xffff_ffff
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{seed:08x}{n:08x}")
}
