//! The one audit line each request gets: who asked for what, what the policy
//! decided and why, which field *names* were removed, bytes and latency.
//! It never holds a value, a query string or a key. The request's handler
//! owns the record; whatever outlives the handler (an answer's body, a
//! tunnel) takes it along and finishes it. Metrics and the anomaly detector
//! hear of it through `telemetry::record`; this module only writes the line.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::store::{Snapshot, Telemetry};
use crate::vocab::Reason;

/// What became of a request, as the audit line and the metrics spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The client left before a decision was made: not a refusal.
    Abandoned,
    Allow,
    Refuse,
    /// Allowed, though enforcement would have refused (report mode).
    Report,
}

impl Outcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Abandoned => "abandoned",
            Outcome::Allow => "allow",
            Outcome::Refuse => "refuse",
            Outcome::Report => "report",
        }
    }
}

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
    pub decision: Outcome,
    pub reason: Option<Reason>,
    pub would_refuse: Option<Reason>,
    pub status: u16,
    pub removed: Vec<String>,
    pub client_credentials: usize,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub upgraded: bool,
    /// Sent inside an intercepted CONNECT tunnel (or the CONNECT that opened one).
    pub intercepted: bool,
    pub complete: bool,
    pub started: Instant,
    /// Index of the route that matched, for metric labels.
    pub route: Option<usize>,
    /// Set when the request went upstream: time to the answer's headers.
    pub upstream_latency: Option<Duration>,
    /// Every field name of the body (for new-field anomalies).
    pub fields: Vec<String>,
    /// Metric labels of the removed fields: policy paths or "(other)".
    pub field_labels: Vec<String>,
    /// The route's `schema` failed here: field path and keyword, never the value.
    pub invalid_value: Option<String>,
    /// Names of the query parameters a route's query policy removed (never values).
    pub removed_query: Vec<String>,
    pub(super) telemetry: Arc<Telemetry>,
    /// The snapshot's metric handles, so `record` counts without building labels.
    pub(super) metric_handles: Arc<super::metric_handles::Handles>,
}

impl Audit {
    pub fn new(snap: &Snapshot, telemetry: &Arc<Telemetry>, method: &str) -> Audit {
        Audit {
            request_id: telemetry.request_ids.next(),
            generation: snap.generation,
            policy_hash: snap.policy.hash.clone(),
            destination: None,
            host: None,
            method: method.to_owned(),
            path: String::new(),
            // Until a decision is written: a client that leaves before one
            // was made is not a refusal.
            decision: Outcome::Abandoned,
            reason: None,
            would_refuse: None,
            status: 0,
            removed: Vec::new(),
            client_credentials: 0,
            bytes_in: 0,
            bytes_out: 0,
            upgraded: false,
            intercepted: false,
            complete: true,
            started: Instant::now(),
            route: None,
            upstream_latency: None,
            fields: Vec::new(),
            field_labels: Vec::new(),
            invalid_value: None,
            removed_query: Vec::new(),
            telemetry: telemetry.clone(),
            metric_handles: super::metric_handles::for_snapshot(&telemetry.metrics.handles, snap),
        }
    }

    /// The request went through with `status` (in report mode, as a report).
    pub fn allowed(&mut self, status: u16) {
        self.decision = match self.would_refuse {
            Some(_) => Outcome::Report,
            None => Outcome::Allow,
        };
        self.status = status;
    }

    /// The request was refused for `reason` with `status`.
    pub fn refused(&mut self, reason: Reason, status: u16) {
        self.decision = Outcome::Refuse;
        self.reason = Some(reason);
        self.status = status;
    }

    /// Ends the record: metrics and the detector hear of it, then the line is
    /// written. Taking `self` means nothing can write it twice.
    pub fn finish(self) {
        // The work is in `Drop`, so a record dropped on any path is written too.
    }

    fn write_line(&self, latency: Duration) {
        let latency_ms = (latency.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0;
        let file = self.telemetry.audit_file.get();
        // The filter (EGRESS_GUARD_LOG) can still turn the audit target off.
        let logged = tracing::enabled!(target: "egress_guard::audit", tracing::Level::INFO);
        if !logged && file.is_none() {
            return;
        }
        let ts = super::audit_file::records::now();
        if logged && !super::log_sink::append_direct(|buf| super::audit_json::line(buf, self, &ts, latency_ms)) {
            self.trace_line(latency_ms);
        }
        if let Some(file) = file {
            file.append(super::audit_json::file_record(self, &ts, latency_ms));
        }
    }

    /// The line through tracing's formatter: the text layout (a terminal)
    /// and in-process tests, where no direct JSON sink is installed.
    pub(super) fn trace_line(&self, latency_ms: f64) {
        let names = |list: &[String]| list.iter().map(|n| loggable_name(n)).collect::<Vec<_>>().join(",");
        tracing::info!(
            target: "egress_guard::audit",
            request_id = %self.request_id,
            policy_generation = self.generation,
            policy_hash = %self.policy_hash,
            destination = self.destination.as_deref().unwrap_or("-"),
            host = self.host.as_deref().unwrap_or("-"),
            method = %self.method,
            path = %self.path,
            decision = self.decision.as_str(),
            reason = self.reason.map_or("-", Reason::code),
            would_refuse = self.would_refuse.map_or("-", Reason::code),
            status = self.status,
            removed_fields = %names(&self.removed),
            invalid_value = self.invalid_value.as_deref().unwrap_or("-"),
            removed_query = %names(&self.removed_query),
            client_credentials = self.client_credentials,
            bytes_in = self.bytes_in,
            bytes_out = self.bytes_out,
            upgraded = self.upgraded,
            intercepted = self.intercepted,
            complete = self.complete,
            latency_ms = latency_ms,
            "request"
        );
    }
}

impl Drop for Audit {
    fn drop(&mut self) {
        // Every request gets its line, even one dropped on an unexpected path.
        let latency = self.started.elapsed();
        super::record(self, latency);
        self.write_line(latency);
    }
}

/// A field name as logged. A client may put a value where a key belongs
/// (`{"jane@example.org": 1}`); a segment that looks like one (an `@`, a run
/// of six digits or more, over 40 characters) and the rest of the name after
/// it are logged as `(value-like)`.
pub fn loggable_name(name: &str) -> std::borrow::Cow<'_, str> {
    // One pass over the bytes, no allocation unless something is masked
    // (every removed field of every request comes through here). A key may
    // itself hold dots (an e-mail address): from the first value-like
    // segment on, nothing of the name is told.
    let bytes = name.as_bytes();
    // Most names: at most 40 bytes, no '@', under six digits in all, so no
    // segment can be value-like (a branch-free count the compiler vectorises).
    let (ats, all_digits) = bytes.iter().fold((0usize, 0usize), |(a, d), b| {
        (a + usize::from(*b == b'@'), d + usize::from(b.is_ascii_digit()))
    });
    if bytes.len() <= 40 && ats == 0 && all_digits < 6 {
        return name.into();
    }
    let (mut start, mut digits, mut chars, mut at) = (0, 0, 0, false);
    for i in 0..=bytes.len() {
        match bytes.get(i) {
            Some(b'.') | None => {
                let seg = name.get(start..i).unwrap_or_default();
                if at || digits >= 6 || (chars > 40 && seg.trim_end_matches("[]").chars().count() > 40) {
                    return match start {
                        0 => "(value-like)".into(),
                        _ => format!("{}(value-like)", name.get(..start).unwrap_or_default()).into(),
                    };
                }
                (start, digits, chars, at) = (i + 1, 0, 0, false);
            }
            Some(&b) => {
                digits += usize::from(b.is_ascii_digit());
                // Count characters, not UTF-8 continuation bytes.
                chars += usize::from(b & 0xc0 != 0x80);
                at |= b == b'@';
            }
        }
    }
    name.into()
}

/// A name segment that looks like a value: an `@`, a run of six digits or
/// more, over 40 characters.
fn value_like(segment: &str) -> bool {
    let digits = segment.bytes().filter(u8::is_ascii_digit).count();
    segment.contains('@') || digits >= 6 || segment.chars().count() > 40
}

/// A request path as logged. A client puts values in paths too
/// (`/v1/customers/jane@example.org`): under a matched route the route's
/// pattern is logged, so what `*` and `**` matched is never told; with no
/// route (none matched, or the destination lists none) each segment that
/// looks like a value, or holds a percent-encoded byte, is `(value-like)`.
pub fn loggable_path(path: &str, route: Option<&crate::policy::PathGlob>) -> String {
    if let Some(glob) = route {
        return glob.text.clone();
    }
    let masked: Vec<&str> = path
        .split('/')
        .map(|seg| {
            if value_like(seg) || seg.contains('%') {
                "(value-like)"
            } else {
                seg
            }
        })
        .collect();
    masked.join("/")
}

/// Sortable request ids, unique per proxy: a start stamp and a counter. One
/// lives in the store's telemetry, beside the other figures every request adds to.
#[derive(Debug)]
pub struct RequestIds {
    seed: u64,
    next: AtomicU64,
}

impl Default for RequestIds {
    fn default() -> RequestIds {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        RequestIds {
            seed: (nanos ^ u64::from(std::process::id()).rotate_left(32)) & 0xffff_ffff,
            next: AtomicU64::new(0),
        }
    }
}

impl RequestIds {
    fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{:08x}{n:08x}", self.seed)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn value_like_names_are_masked() {
        let cases: &[(&str, &str)] = &[
            ("billing.email", "billing.email"),
            ("line_items[].sku", "line_items[].sku"),
            ("jane@example.org", "(value-like)"),
            ("meta.4111111111111111.x", "meta.(value-like)"),
            ("orders_by_id[].20261126", "orders_by_id[].(value-like)"),
            ("a2024b", "a2024b"),
        ];
        for (name, want) in cases {
            assert_eq!(super::loggable_name(name), *want, "{name}");
        }
    }

    /// The two-pass form `loggable_name` had before it was made single-pass.
    fn reference(name: &str) -> String {
        let value_like = |seg: &str| {
            seg.contains('@') || seg.bytes().filter(u8::is_ascii_digit).count() >= 6 || seg.chars().count() > 40
        };
        let mut start = 0;
        for seg in name.split('.') {
            if value_like(seg.trim_end_matches("[]")) {
                return format!("{}(value-like)", &name[..start]);
            }
            start += seg.len() + 1;
        }
        name.to_owned()
    }

    #[test]
    fn single_pass_masking_agrees_with_the_reference() {
        let k40 = "k".repeat(40);
        let rows = [
            String::new(),
            "k".repeat(41),
            format!("{k40}[][]"),
            format!("{k40}[]x"),
            "\u{e9}".repeat(40),
            "\u{e9}".repeat(41),
            "a.123.456".into(),
            "a.b.x@y".into(),
            "a..b".into(),
            ".".into(),
            format!("x.{k40}k.y"),
        ];
        for name in &rows {
            assert_eq!(super::loggable_name(name), reference(name), "{name:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn masking_agrees_with_the_reference_on_any_name(name in "[a-z0-9@.\\[\\]\u{e9}]{0,60}") {
            proptest::prop_assert_eq!(super::loggable_name(&name), reference(&name));
        }
    }

    #[test]
    fn paths_are_logged_by_pattern_or_masked() {
        let glob = |t: &str| crate::policy::PathGlob::parse(t).unwrap();
        let cases: &[(&str, &str, Option<&str>, &str)] = &[
            (
                "star",
                "/v1/customers/jane@example.org",
                Some("/v1/customers/*"),
                "/v1/customers/*",
            ),
            ("rest", "/v1/files/a/4111111111111111", Some("/v1/**"), "/v1/**"),
            ("literal", "/v1/orders", Some("/v1/orders"), "/v1/orders"),
            (
                "no route, e-mail",
                "/v1/customers/jane@example.org/notes",
                None,
                "/v1/customers/(value-like)/notes",
            ),
            (
                "no route, encoded",
                "/v1/customers/jane%40example.org",
                None,
                "/v1/customers/(value-like)",
            ),
            (
                "no route, digits",
                "/v1/cards/4111111111111111",
                None,
                "/v1/cards/(value-like)",
            ),
            ("no route, plain", "/v1/orders/ord_12", None, "/v1/orders/ord_12"),
        ];
        for (name, path, route, want) in cases {
            let g = route.map(glob);
            assert_eq!(super::loggable_path(path, g.as_ref()), *want, "{name}");
        }
    }
}
