//! The records the audit file holds, as compact JSON objects without their
//! `chain`: `request` (the fields of the per-request audit log line), and the
//! file's own bookkeeping: `file_start`, `chain_break` and `gap`.

use serde::{Deserialize, Serialize};

use super::chain::Chain;

/// A request's record: the audit log line's fields, in its order, with `record` and `ts` first.
/// The request path writes it by hand (`telemetry::audit_json`, same bytes);
/// this serde form is the reference its tests and the benchmark compare with.
#[derive(Serialize)]
pub struct Request<'a> {
    pub record: &'static str,
    pub ts: String,
    pub request_id: &'a str,
    pub policy_generation: u64,
    pub policy_hash: &'a str,
    pub destination: &'a str,
    pub host: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub decision: &'static str,
    pub reason: &'static str,
    pub would_refuse: &'static str,
    pub status: u16,
    pub removed_fields: String,
    pub invalid_value: &'a str,
    pub removed_query: String,
    pub client_credentials: usize,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub upgraded: bool,
    pub intercepted: bool,
    pub complete: bool,
    pub latency_ms: f64,
}

impl Request<'_> {
    /// The record's JSON text (empty, and so dropped, should serde ever fail).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[derive(Serialize)]
struct FileStart<'a> {
    record: &'static str,
    ts: String,
    prev_chain: &'a str,
    prev_file: &'a str,
}

/// The first record of every file: the chain it continues (`GENESIS` for a
/// new chain) and the name the previous file was rotated to ("-" if none).
pub fn file_start(prev: &Chain, prev_file: &str) -> Vec<u8> {
    let r = FileStart {
        record: "file_start",
        ts: now(),
        prev_chain: prev.as_str(),
        prev_file,
    };
    serde_json::to_vec(&r).unwrap_or_default()
}

#[derive(Serialize)]
struct ChainBreak<'a> {
    record: &'static str,
    ts: String,
    reason: &'a str,
    damaged_line: u64,
}

/// Starts a new segment from `GENESIS` after a damaged last line (line
/// `damaged_line` of the file, counted from 1).
pub fn chain_break(reason: &str, damaged_line: u64) -> Vec<u8> {
    let r = ChainBreak {
        record: "chain_break",
        ts: now(),
        reason,
        damaged_line,
    };
    serde_json::to_vec(&r).unwrap_or_default()
}

#[derive(Serialize)]
struct Gap<'a> {
    record: &'static str,
    ts: String,
    dropped: u64,
    why: &'a str,
}

/// Says in the chain that `dropped` records were lost (queue full, write error).
pub fn gap(dropped: u64, why: &str) -> Vec<u8> {
    let r = Gap {
        record: "gap",
        ts: now(),
        dropped,
        why,
    };
    serde_json::to_vec(&r).unwrap_or_default()
}

/// What the chain needs to know of a record: its kind and, for a
/// `file_start`, the chain it says it continues.
#[derive(Deserialize)]
pub struct Head {
    pub record: String,
    pub prev_chain: Option<String>,
    pub reason: Option<String>,
}

/// Reads a record's head; an error when it is not a JSON object with a `record`.
pub fn head(record: &[u8]) -> Result<Head, &'static str> {
    serde_json::from_slice(record).map_err(|_| "not a JSON object with a `record` member")
}

/// Now as RFC 3339 UTC with microseconds: `2026-12-02T01:40:00.123456Z`.
pub fn now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs(), d.subsec_micros())
}

/// `secs` since the epoch as RFC 3339 (civil-from-days, proleptic Gregorian).
pub fn rfc3339(secs: u64, micros: u32) -> String {
    let (y, m, d) = civil(secs / 86_400);
    let t = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// `secs` since the epoch as a file name stamp: `20261202T014000Z`.
pub fn stamp(secs: u64) -> String {
    let (y, m, d) = civil(secs / 86_400);
    let t = secs % 86_400;
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", t / 3600, t / 60 % 60, t % 60)
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_are_civil_utc() {
        let cases: &[(&str, u64, &str)] = &[
            ("epoch", 0, "1970-01-01T00:00:00.000007Z"),
            ("leap day", 951_782_400, "2000-02-29T00:00:00.000007Z"),
            ("end of year", 1_798_761_599, "2026-12-31T23:59:59.000007Z"),
        ];
        for (name, secs, want) in cases {
            assert_eq!(super::rfc3339(*secs, 7), *want, "{name}");
        }
        assert_eq!(super::stamp(1_798_761_599), "20261231T235959Z");
    }
}
