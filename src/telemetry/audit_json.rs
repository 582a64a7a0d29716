//! The audit record as JSON, written by hand: one encoder for the audit log
//! line and the audit file's `request` record, so neither goes through
//! tracing's generic field visitor or serde. The bytes are what
//! tracing-subscriber's JSON formatter and serde_json wrote before (same
//! field order, same string escaping, same number formatting).

use super::audit::{loggable_name, Audit};
use crate::vocab::Reason;

/// The target audit lines carry (and `EGRESS_GUARD_LOG` filters on).
pub(crate) const TARGET: &str = "egress_guard::audit";

/// One whole audit log line, newline included, in tracing-subscriber's
/// flattened JSON layout: timestamp, level, message, fields, target.
pub(crate) fn line(out: &mut Vec<u8>, a: &Audit, ts: &str, latency_ms: f64) {
    out.extend_from_slice(b"{\"timestamp\":");
    string(out, ts);
    out.extend_from_slice(b",\"level\":\"INFO\",\"message\":\"request\",");
    fields(out, a, latency_ms);
    out.extend_from_slice(b",\"target\":\"");
    out.extend_from_slice(TARGET.as_bytes());
    out.extend_from_slice(b"\"}\n");
}

/// The audit file's `request` record (no chain): `record` and `ts`, then
/// exactly the log line's fields, as docs/audit-file.md shows.
pub(crate) fn file_record(a: &Audit, ts: &str, latency_ms: f64) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"{\"record\":\"request\",\"ts\":");
    string(&mut out, ts);
    out.push(b',');
    fields(&mut out, a, latency_ms);
    out.push(b'}');
    out
}

/// The record's fields, comma separated, without braces: the same for the
/// log line and the audit file, so the file is the whole record.
fn fields(out: &mut Vec<u8>, a: &Audit, latency_ms: f64) {
    key_str(out, "request_id", &a.request_id);
    key_raw(out, ",\"policy_generation\":", a.generation);
    key_str(out, ",\"policy_hash\"", &a.policy_hash);
    key_str(out, ",\"destination\"", a.destination.as_deref().unwrap_or("-"));
    key_str(out, ",\"host\"", a.host.as_deref().unwrap_or("-"));
    key_str(out, ",\"method\"", &a.method);
    key_str(out, ",\"path\"", &a.path);
    key_str(out, ",\"decision\"", a.decision.as_str());
    key_str(out, ",\"reason\"", a.reason.map_or("-", Reason::code));
    key_str(out, ",\"would_refuse\"", a.would_refuse.map_or("-", Reason::code));
    key_raw(out, ",\"status\":", a.status);
    out.extend_from_slice(b",\"removed_fields\":");
    names(out, &a.removed);
    key_str(out, ",\"invalid_value\"", a.invalid_value.as_deref().unwrap_or("-"));
    out.extend_from_slice(b",\"removed_query\":");
    names(out, &a.removed_query);
    key_raw(out, ",\"client_credentials\":", a.client_credentials);
    key_raw(out, ",\"bytes_in\":", a.bytes_in);
    key_raw(out, ",\"bytes_out\":", a.bytes_out);
    key_raw(out, ",\"upgraded\":", a.upgraded);
    key_raw(out, ",\"intercepted\":", a.intercepted);
    key_raw(out, ",\"complete\":", a.complete);
    out.extend_from_slice(b",\"latency_ms\":");
    number(out, latency_ms);
}

/// `"key":"value"`; `key` is given with its leading comma and quotes, or bare for the first.
fn key_str(out: &mut Vec<u8>, key: &str, value: &str) {
    if key.starts_with(',') {
        out.extend_from_slice(key.as_bytes());
    } else {
        out.push(b'"');
        out.extend_from_slice(key.as_bytes());
        out.push(b'"');
    }
    out.push(b':');
    string(out, value);
}

/// `key` (given whole, colon included) and a value whose Display is JSON already.
fn key_raw(out: &mut Vec<u8>, key: &str, value: impl std::fmt::Display) {
    use std::io::Write;
    out.extend_from_slice(key.as_bytes());
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{value}");
}

/// A float as serde_json writes it (shortest round-trip form, `null` if not finite).
fn number(out: &mut Vec<u8>, v: f64) {
    if serde_json::to_writer(&mut *out, &v).is_err() {
        out.extend_from_slice(b"null");
    }
}

/// Field names as logged (`loggable_name`), comma joined, as one JSON string.
fn names(out: &mut Vec<u8>, list: &[String]) {
    out.push(b'"');
    for (i, n) in list.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        escape(out, &loggable_name(n));
    }
    out.push(b'"');
}

/// `s` as a quoted JSON string.
pub(crate) fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    escape(out, s);
    out.push(b'"');
}

/// serde_json's escaping: `"` and `\`, the control characters below 0x20
/// (short forms where JSON has them, else `\u00xx` in lower-case hex);
/// everything else, non-ASCII included, passes through as UTF-8.
fn escape(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x0c => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(bytes.get(start..i).unwrap_or_default());
        start = i + 1;
        if short.is_empty() {
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hex(b >> 4), hex(b & 0xf)]);
        } else {
            out.extend_from_slice(short);
        }
    }
    out.extend_from_slice(bytes.get(start..).unwrap_or_default());
}

fn hex(n: u8) -> u8 {
    if n < 10 {
        b'0' + n
    } else {
        b'a' + n - 10
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    fn ours(s: &str) -> String {
        let mut out = Vec::new();
        super::string(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_escaped_as_serde_json_does() {
        let cases: &[(&str, &str)] = &[
            ("plain", "billing.email"),
            ("quote and backslash", "a\"b\\c"),
            ("short escapes", "\u{8}\u{c}\n\r\t"),
            ("other controls", "\u{0}\u{1}\u{1f}\u{b}"),
            ("del passes", "\u{7f}"),
            ("non-ascii", "caf\u{e9} \u{2028}\u{2029} \u{1f600} \u{feff}"),
            ("slash stays", "</script>/"),
            ("empty", ""),
        ];
        for (name, s) in cases {
            assert_eq!(ours(s), serde_json::to_string(s).unwrap(), "{name}");
        }
    }

    proptest! {
        #[test]
        fn any_string_is_escaped_as_serde_json_does(s in any::<String>()) {
            prop_assert_eq!(ours(&s), serde_json::to_string(&s).unwrap());
        }

        #[test]
        fn any_float_is_written_as_serde_json_does(v in any::<f64>()) {
            let mut out = Vec::new();
            super::number(&mut out, v);
            prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&v).unwrap());
        }
    }
}

#[cfg(test)]
#[path = "audit_json_tests.rs"]
mod same_bytes;
