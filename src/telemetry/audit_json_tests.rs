//! The hand-written audit line and file record against what they replaced:
//! tracing-subscriber's flattened JSON line and the serde `Request` record.

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::store::PolicyStore;
use crate::telemetry::audit::{Audit, Outcome};
use crate::telemetry::audit_file::records::Request;
use crate::vocab::Reason;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, d: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(d);
        Ok(d.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Records with awkward values: quotes, controls, non-ASCII, value-like names, empty lists.
fn records(store: &PolicyStore) -> Vec<Audit> {
    let snap = store.load();
    let mut plain = Audit::new(&snap, &store.telemetry, "GET");
    plain.refused(Reason::DestinationNotAllowed, 403);
    plain.host = Some("api.nowhere.test".into());
    let mut odd = Audit::new(&snap, &store.telemetry, "PO\"ST");
    odd.destination = Some("shipper".into());
    odd.path = "/v1/caf\u{e9}/\u{1}\t\"\\/\u{2028}".into();
    odd.decision = Outcome::Report;
    odd.would_refuse = Some(Reason::RateLimited);
    odd.status = 201;
    odd.removed = vec!["billing".into(), "meta.jane@example.org".into(), "a\"b\u{7f}".into()];
    odd.removed_query = vec!["api_token".into(), "4111111111111111".into()];
    odd.invalid_value = Some("items[].qty: \"minimum\"\n".into());
    (odd.client_credentials, odd.bytes_in, odd.bytes_out) = (2, 2431, u64::MAX);
    (odd.upgraded, odd.intercepted, odd.complete) = (true, true, false);
    vec![plain, odd]
}

fn store() -> PolicyStore {
    let key = concat!("file:", env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/unit-test-key");
    let text = format!(
        "version: 1\ndestinations:\n  shipper:\n    host: api.shipper.example\n    credential:\n      header: X-API-KEY\n      secret: {key}\n"
    );
    PolicyStore::new(crate::policy::compile(&text).unwrap())
}

#[test]
fn the_line_is_what_tracing_subscriber_wrote() {
    let store = store();
    for (i, a) in records(&store).iter().enumerate() {
        for latency_ms in [0.0, 0.158, 1.5, 12345.678, 0.001] {
            let cap = Capture::default();
            let w = cap.clone();
            let sub = tracing_subscriber::fmt()
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .without_time()
                .with_writer(move || w.clone())
                .finish();
            tracing::subscriber::with_default(sub, || a.trace_line(latency_ms));
            let want = String::from_utf8(cap.0.lock().unwrap().clone()).unwrap();
            let mut ours = Vec::new();
            super::line(&mut ours, a, "2026-12-02T01:47:27.483591Z", latency_ms);
            let ours = String::from_utf8(ours).unwrap();
            let ours = ours.replacen("\"timestamp\":\"2026-12-02T01:47:27.483591Z\",", "", 1);
            assert_eq!(ours, want, "record {i}, {latency_ms} ms");
        }
    }
}

#[test]
fn the_file_record_is_what_serde_wrote() {
    let store = store();
    let ts = "2026-12-02T01:47:27.483591Z";
    for (i, a) in records(&store).iter().enumerate() {
        let removed: Vec<_> = a.removed.iter().map(|n| super::loggable_name(n)).collect();
        let want = Request {
            record: "request",
            ts: ts.into(),
            request_id: &a.request_id,
            policy_generation: a.generation,
            policy_hash: &a.policy_hash,
            destination: a.destination.as_deref().unwrap_or("-"),
            host: a.host.as_deref().unwrap_or("-"),
            method: &a.method,
            path: &a.path,
            decision: a.decision.as_str(),
            reason: a.reason.map_or("-", Reason::code),
            would_refuse: a.would_refuse.map_or("-", Reason::code),
            status: a.status,
            removed_fields: removed.join(","),
            invalid_value: a.invalid_value.as_deref().unwrap_or("-"),
            removed_query: a
                .removed_query
                .iter()
                .map(|n| super::loggable_name(n))
                .collect::<Vec<_>>()
                .join(","),
            client_credentials: a.client_credentials,
            bytes_in: a.bytes_in,
            bytes_out: a.bytes_out,
            upgraded: a.upgraded,
            intercepted: a.intercepted,
            complete: a.complete,
            latency_ms: 0.158,
        }
        .encode();
        let ours = super::file_record(a, ts, 0.158);
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            String::from_utf8(want).unwrap(),
            "record {i}"
        );
    }
}
